/* A lean librdkafka consumer for the benchmark: reads every partition of one topic from the
 * beginning to its end and prints how many messages and value bytes it saw.
 *
 * Why it exists: kcat formats and writes each message (printf, a malloc per message), which
 * on these 2 cores costs the client about three times the server's CPU, so a kcat figure
 * measures kcat. This client does what a consumer application's fetch loop does and no more:
 * librdkafka's own fetching, decoding and per-message ops, with the payload touched (its
 * length summed) and nothing written. It is the same library kcat and confluent-kafka use.
 *
 * Usage: kafka_consume BROKER TOPIC            (prints "<messages> <value bytes>")
 * Build: cc -O2 -o kafka_consume kafka_consume.c -lrdkafka   (Debian: librdkafka-dev)
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long one consume call waits for messages before checking the end-of-partition count. */
#define POLL_TIMEOUT_MS 1000
/* Give up when nothing at all arrives for this long (a stuck broker must not hang the bench). */
#define IDLE_LIMIT_MS 30000

struct progress {
    long long messages;
    long long value_bytes;
    int partitions_at_end;
    /* Which partitions reached their end (an end is counted once per partition). */
    char *at_end;
    int partitions;
    int error;
};

static void on_message(rd_kafka_message_t *m, void *opaque) {
    struct progress *p = opaque;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (m->partition >= 0 && m->partition < p->partitions && !p->at_end[m->partition]) {
            p->at_end[m->partition] = 1;
            p->partitions_at_end++;
        }
    } else if (m->err) {
        fprintf(stderr, "consume error: %s\n", rd_kafka_message_errstr(m));
        p->error = 1;
    } else {
        p->messages++;
        p->value_bytes += (long long)m->len;
    }
}

static void die(const char *what, const char *why) {
    fprintf(stderr, "kafka_consume: %s: %s\n", what, why);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc != 3) die("usage", "kafka_consume BROKER TOPIC");
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *settings[][2] = {
        {"bootstrap.servers", argv[1]},
        {"enable.partition.eof", "true"},
        {"fetch.max.bytes", "52428800"},
        {"queued.min.messages", "1000000"},
    };
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], err, sizeof err) != RD_KAFKA_CONF_OK)
            die(settings[i][0], err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) die("rd_kafka_new", err);
    rd_kafka_topic_t *topic = rd_kafka_topic_new(rk, argv[2], NULL);
    if (!topic) die("topic", rd_kafka_err2str(rd_kafka_last_error()));

    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t rc = rd_kafka_metadata(rk, 0, topic, &md, 10000);
    if (rc) die("metadata", rd_kafka_err2str(rc));
    if (md->topic_cnt != 1 || md->topics[0].err) die("metadata", "topic not found");
    int partitions = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);

    rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
    for (int p = 0; p < partitions; p++)
        if (rd_kafka_consume_start_queue(topic, p, RD_KAFKA_OFFSET_BEGINNING, queue) == -1)
            die("consume_start", rd_kafka_err2str(rd_kafka_last_error()));

    struct progress progress = {0};
    progress.partitions = partitions;
    progress.at_end = calloc((size_t)partitions, 1);
    if (!progress.at_end) die("calloc", "out of memory");
    struct timespec last_message, now;
    clock_gettime(CLOCK_MONOTONIC, &last_message);
    while (progress.partitions_at_end < partitions && !progress.error) {
        long long before = progress.messages;
        if (rd_kafka_consume_callback_queue(queue, POLL_TIMEOUT_MS, on_message, &progress) == -1)
            die("consume", rd_kafka_err2str(rd_kafka_last_error()));
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (progress.messages != before) last_message = now;
        long idle_ms = (now.tv_sec - last_message.tv_sec) * 1000 + (now.tv_nsec - last_message.tv_nsec) / 1000000;
        if (idle_ms >= IDLE_LIMIT_MS) die("consume", "no message for 30 s");
    }
    free(progress.at_end);
    for (int p = 0; p < partitions; p++) rd_kafka_consume_stop(topic, p);
    rd_kafka_queue_destroy(queue);
    rd_kafka_topic_destroy(topic);
    rd_kafka_destroy(rk);
    if (progress.error) return 1;
    printf("%lld %lld\n", progress.messages, progress.value_bytes);
    return 0;
}
