/* A C host for boundflow's C ABI, run under AddressSanitizer by .ci/run (ffi/tests/c/run.sh).
 * It opens a registry from a preset directory, sends and receives, then tries every misuse —
 * each must return its code with a useful last-error message, and nothing may crash, leak or
 * touch freed memory. Usage: host <config-dir>. Exit status 0 when every check holds. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "boundflow.h"

static int failures = 0;

#define CHECK(cond, what)                                                        \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "FAIL %s:%d: %s (last error: %s)\n", __FILE__,       \
                    __LINE__, what, boundflow_last_error());                     \
            failures++;                                                          \
        }                                                                        \
    } while (0)

/* The call returned `code` and left a non-empty message naming `needle`. */
#define EXPECT(call, code, needle)                                               \
    do {                                                                         \
        int32_t got_ = (call);                                                   \
        CHECK(got_ == (code), #call " returned the wrong status");              \
        CHECK(strstr(boundflow_last_error(), (needle)) != NULL,                  \
              #call ": the last error does not say " needle);                    \
    } while (0)

static double millis_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 + (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s <config-dir>\n", argv[0]);
        return 2;
    }
    const char *channel = "worker.step_processor.result"; /* flume, 100 slots in `test` */
    uint64_t registry = 0, tx = 0, rx = 0;
    CHECK(boundflow_registry_open(argv[1], "test", &registry) == BOUNDFLOW_OK, "registry_open");
    CHECK(boundflow_sender_open(registry, channel, 64, &tx) == BOUNDFLOW_OK, "sender_open");
    CHECK(boundflow_receiver_open(registry, channel, &rx) == BOUNDFLOW_OK, "receiver_open");

    /* The happy path. */
    uint8_t buf[64];
    size_t len = 0;
    CHECK(boundflow_try_send(tx, (const uint8_t *)"hello", 5) == BOUNDFLOW_OK, "try_send");
    CHECK(boundflow_recv_timeout(rx, buf, sizeof buf, &len, 100) == BOUNDFLOW_OK, "recv_timeout");
    CHECK(len == 5 && memcmp(buf, "hello", 5) == 0, "the message arrived intact");

    /* Misuse: each returns its code and says why. */
    EXPECT(boundflow_try_send(tx, NULL, 5), BOUNDFLOW_INVALID_ARGUMENT, "NULL");
    EXPECT(boundflow_try_send(tx, buf, 0), BOUNDFLOW_INVALID_ARGUMENT, "empty");
    uint8_t big[65] = {0};
    EXPECT(boundflow_try_send(tx, big, sizeof big), BOUNDFLOW_INVALID_ARGUMENT, "max_message_size");
    EXPECT(boundflow_recv_timeout(rx, NULL, 8, &len, 0), BOUNDFLOW_INVALID_ARGUMENT, "NULL");
    EXPECT(boundflow_sender_open(registry, NULL, 64, &tx), BOUNDFLOW_INVALID_ARGUMENT, "NULL");
    EXPECT(boundflow_sender_open(registry, "worker.step_processor.reslt", 64, &(uint64_t){0}),
           BOUNDFLOW_NOT_FOUND, "worker.step_processor.result");
    EXPECT(boundflow_registry_open("/nonexistent", NULL, &(uint64_t){0}), BOUNDFLOW_CONFIG_ERROR,
           "/nonexistent");
    EXPECT(boundflow_try_send(rx, buf, 1), BOUNDFLOW_INVALID_HANDLE, "handle");
    EXPECT(boundflow_try_send(0, buf, 1), BOUNDFLOW_INVALID_HANDLE, "handle");

    /* A too-small buffer: the size needed, and the message kept for the next receive. */
    CHECK(boundflow_try_send(tx, (const uint8_t *)"twelve bytes", 12) == BOUNDFLOW_OK, "send 12");
    uint8_t tiny[4];
    EXPECT(boundflow_recv_timeout(rx, tiny, sizeof tiny, &len, 100), BOUNDFLOW_BUFFER_TOO_SMALL, "12 bytes");
    CHECK(len == 12, "the size needed is reported");
    CHECK(boundflow_recv_timeout(rx, buf, sizeof buf, &len, 100) == BOUNDFLOW_OK && len == 12,
          "the kept message comes next");

    /* A full channel: send_timeout of 50 ms returns TIMEOUT after at least 50 ms, and the
     * message is still ours (we send it again once there is room). */
    const uint8_t msg[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int accepted = 0;
    while (boundflow_try_send(tx, msg, sizeof msg) == BOUNDFLOW_OK) {
        accepted++;
    }
    CHECK(accepted == 100, "the test environment's capacity");
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    EXPECT(boundflow_send_timeout(tx, msg, sizeof msg, 50), BOUNDFLOW_TIMEOUT, "50 ms");
    CHECK(millis_since(&start) >= 50.0, "TIMEOUT came early");
    CHECK(boundflow_recv_timeout(rx, buf, sizeof buf, &len, 100) == BOUNDFLOW_OK, "make room");
    CHECK(boundflow_send_timeout(tx, msg, sizeof msg, 50) == BOUNDFLOW_OK, "the kept message sends");

    /* recv_many drains in batches. */
    uint8_t storage[16][8];
    BoundflowBuffer bufs[16];
    size_t drained = 0, received = 0;
    for (;;) {
        for (int i = 0; i < 16; i++) {
            bufs[i] = (BoundflowBuffer){.data = storage[i], .capacity = sizeof storage[i]};
        }
        if (boundflow_recv_many(rx, bufs, 16, &received, 10) != BOUNDFLOW_OK) {
            break;
        }
        drained += received;
    }
    CHECK(drained == 100, "every queued message drained once");

    /* Stats through an older, shorter struct: only its fields are written. */
    BoundflowStats stats;
    memset(&stats, 0xAB, sizeof stats);
    stats.size = (uint32_t)offsetof(BoundflowStats, received);
    CHECK(boundflow_stats(tx, &stats) == BOUNDFLOW_OK, "stats");
    CHECK(stats.sent == 103, "sent counts every accepted message");
    CHECK(stats.received == 0xABABABABABABABABull, "nothing written past the caller's size");
    stats.size = sizeof stats;
    CHECK(boundflow_stats(rx, &stats) == BOUNDFLOW_OK && stats.received == 103, "full stats");

    /* Fork: the child's calls return FORKED instead of touching the parent's state. */
    pid_t pid = fork();
    if (pid == 0) {
        _exit(boundflow_try_send(tx, msg, sizeof msg) == BOUNDFLOW_FORKED ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a forked child got FORKED");

    /* A closed channel. */
    CHECK(boundflow_receiver_close(rx, 100) == BOUNDFLOW_OK, "receiver_close");
    EXPECT(boundflow_try_send(tx, msg, sizeof msg), BOUNDFLOW_CLOSED, "closed");
    EXPECT(boundflow_recv_timeout(rx, buf, sizeof buf, &len, 10), BOUNDFLOW_CLOSED, "closed");

    /* Stale handles and double frees. */
    CHECK(boundflow_handle_free(tx) == BOUNDFLOW_OK, "free tx");
    EXPECT(boundflow_handle_free(tx), BOUNDFLOW_INVALID_HANDLE, "freed");
    EXPECT(boundflow_try_send(tx, msg, sizeof msg), BOUNDFLOW_INVALID_HANDLE, "freed");
    CHECK(boundflow_handle_free(rx) == BOUNDFLOW_OK, "free rx");
    CHECK(boundflow_handle_free(registry) == BOUNDFLOW_OK, "free registry");
    EXPECT(boundflow_handle_free(registry), BOUNDFLOW_INVALID_HANDLE, "freed");

    if (failures == 0) {
        printf("c host: every check passed\n");
    }
    return failures == 0 ? 0 : 1;
}
