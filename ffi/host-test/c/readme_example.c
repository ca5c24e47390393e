#include <stdio.h>
#include "boundflow.h"

int readme_example(const char *config_dir) {
    uint64_t registry, tx, rx;
    if (boundflow_registry_open(config_dir, "test", &registry) != BOUNDFLOW_OK) {
        fprintf(stderr, "config: %s\n", boundflow_last_error()); /* file:line: key: fix */
        return 1;
    }
    boundflow_sender_open(registry, "worker.step_processor.result", 256, &tx);
    boundflow_receiver_open(registry, "worker.step_processor.result", &rx);
    int32_t status = boundflow_send_timeout(tx, (const uint8_t *)"job 1", 5, 100);
    if (status != BOUNDFLOW_OK) /* FULL, TIMEOUT, CLOSED: the message is still ours */
        fprintf(stderr, "send: %s\n", boundflow_last_error());
    uint8_t buf[256];
    size_t len = 0;
    if (boundflow_recv_timeout(rx, buf, sizeof buf, &len, 100) == BOUNDFLOW_OK)
        printf("got %.*s\n", (int)len, (const char *)buf);
    boundflow_handle_free(rx);
    boundflow_handle_free(tx);
    boundflow_handle_free(registry);
    return status;
}
