/* A C worker library: pthreads that exchange messages with a Rust host through boundflow's
 * C ABI. Only bounded waits, and every status is checked. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "boundflow.h"

#define MAX_THREADS 16
#define BATCH 16

typedef struct {
    uint64_t sender;
    uint32_t id;
    uint32_t count;
    uint64_t timeouts;
    int32_t status;
} producer;

/* Sends with a 1 s bound, trying again on TIMEOUT: the message is still ours then. */
static int32_t send_all(uint64_t sender, const uint8_t *msg, size_t len, uint64_t *timeouts) {
    int32_t status;
    while ((status = boundflow_send_timeout(sender, msg, len, 1000)) == BOUNDFLOW_TIMEOUT) {
        ++*timeouts;
    }
    return status;
}

static void *produce(void *arg) {
    producer *p = arg;
    p->status = BOUNDFLOW_OK;
    for (uint32_t i = 0; i < p->count; i++) {
        uint64_t value = ((uint64_t)p->id << 32) | i;
        uint8_t msg[8];
        memcpy(msg, &value, sizeof msg);
        int32_t status = send_all(p->sender, msg, sizeof msg, &p->timeouts);
        if (status != BOUNDFLOW_OK) {
            p->status = status;
            break;
        }
    }
    return NULL;
}

int32_t worker_produce(uint64_t sender, uint32_t threads, uint32_t per_thread, uint64_t *timeouts) {
    pthread_t ids[MAX_THREADS];
    producer producers[MAX_THREADS];
    if (threads > MAX_THREADS) {
        return BOUNDFLOW_INVALID_ARGUMENT;
    }
    for (uint32_t t = 0; t < threads; t++) {
        producers[t] = (producer){.sender = sender, .id = t, .count = per_thread};
        pthread_create(&ids[t], NULL, produce, &producers[t]);
    }
    int32_t result = BOUNDFLOW_OK;
    *timeouts = 0;
    for (uint32_t t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        *timeouts += producers[t].timeouts;
        if (result == BOUNDFLOW_OK) {
            result = producers[t].status;
        }
    }
    return result;
}

typedef struct {
    uint64_t work;
    uint64_t results;
    uint64_t handled;
    uint64_t timeouts;
    int32_t status;
} server;

static void *serve(void *arg) {
    server *s = arg;
    uint8_t storage[BATCH][8];
    BoundflowBuffer bufs[BATCH];
    s->status = BOUNDFLOW_OK;
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            bufs[i].data = storage[i];
            bufs[i].capacity = sizeof storage[i];
            bufs[i].len = 0;
        }
        size_t received = 0;
        int32_t status = boundflow_recv_many(s->work, bufs, BATCH, &received, 100);
        if (status == BOUNDFLOW_TIMEOUT) {
            continue; /* a short slice: a binding would check for signals here */
        }
        if (status == BOUNDFLOW_CLOSED) {
            return NULL;
        }
        if (status != BOUNDFLOW_OK) {
            s->status = status;
            return NULL;
        }
        for (size_t i = 0; i < received; i++) {
            status = send_all(s->results, bufs[i].data, bufs[i].len, &s->timeouts);
            if (status != BOUNDFLOW_OK) {
                s->status = status;
                return NULL;
            }
        }
        s->handled += received;
    }
}

int32_t worker_serve(uint64_t work, uint64_t results, uint32_t threads, uint64_t *handled) {
    pthread_t ids[MAX_THREADS];
    server servers[MAX_THREADS];
    if (threads > MAX_THREADS) {
        return BOUNDFLOW_INVALID_ARGUMENT;
    }
    for (uint32_t t = 0; t < threads; t++) {
        servers[t] = (server){.work = work, .results = results};
        pthread_create(&ids[t], NULL, serve, &servers[t]);
    }
    int32_t result = BOUNDFLOW_OK;
    *handled = 0;
    for (uint32_t t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        *handled += servers[t].handled;
        if (result == BOUNDFLOW_OK) {
            result = servers[t].status;
        }
    }
    return result;
}
