// Warm-up, batch sizing, medians and the JSON-lines output shared by the C peer harnesses.
#include "peer_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ph_current_op = "";
static const char *ph_impl = "";

typedef struct ph_config {
    uint64_t warmup_ns;       // wall time of the warm-up (untimed preparation included)
    uint64_t batch_target_ns; // timed nanoseconds aimed at per batch
    size_t batches;           // the reported ns is the median over these
} ph_config;

static const ph_config ph_full = {150000000u, 50000000u, 11};
static const ph_config ph_quick = {50000000u, 25000000u, 7};
static const size_t ph_default_cap = 1000000;

int ph_fail(const char *what, long code) {
    fprintf(stderr, "%s %s: %s failed (%ld)\n", ph_impl, ph_current_op, what, code);
    return -1;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *values, size_t count) {
    qsort(values, count, sizeof(double), compare_doubles);
    return count % 2 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2;
}

static int batch(const ph_op *op, void *state, size_t n, uint64_t *elapsed) {
    if (op->prepare && op->prepare(state, n) != 0) return -1;
    *elapsed = 0;
    return op->run(state, n, elapsed);
}

static int measure(const ph_op *op, const ph_config *cfg) {
    ph_current_op = op->name;
    void *state = op->setup();
    if (!state) {
        fprintf(stderr, "%s %s: set-up failed\n", ph_impl, op->name);
        return -1;
    }
    size_t cap = op->max_batch ? op->max_batch : ph_default_cap;
    int status = -1;
    double *per_op = calloc(cfg->batches, sizeof(double));
    if (!per_op) goto done;

    // Warm-up: batches doubling in size (never beyond the batch target) until the warm-up time
    // has passed; the last one estimates the cost of one operation.
    uint64_t start = ph_now_ns(), elapsed = 0;
    size_t n = 1;
    double estimate;
    for (;;) {
        if (batch(op, state, n, &elapsed) != 0) goto done;
        estimate = elapsed ? (double)elapsed / (double)n : 1.0;
        if (ph_now_ns() - start >= cfg->warmup_ns) break;
        if ((double)elapsed * 2 <= (double)cfg->batch_target_ns && n * 2 <= cap) n *= 2;
    }
    double wanted = (double)cfg->batch_target_ns / estimate;
    size_t per_batch = wanted < 1 ? 1 : wanted > (double)cap ? cap : (size_t)wanted;

    for (size_t b = 0; b < cfg->batches; b++) {
        if (batch(op, state, per_batch, &elapsed) != 0) goto done;
        per_op[b] = (double)elapsed / (double)per_batch;
    }
    printf("{\"impl\":\"%s\",\"op\":\"%s\",\"ns\":%.1f,\"iterations\":%zu}\n", ph_impl, op->name,
           median(per_op, cfg->batches), per_batch * cfg->batches);
    fflush(stdout);
    status = 0;
done:
    free(per_op);
    op->teardown(state);
    return status;
}

static void usage(FILE *out, const char *argv0) {
    fprintf(out,
            "usage: %s [--ops a,b,c] [--quick] [--list]\n"
            "  --list   print the supported op names, one per line\n"
            "  --ops    run only these ops, in this order (default: all)\n"
            "  --quick  shorter warm-up, fewer and smaller batches\n"
            "Prints one JSON object per op: {\"impl\",\"op\",\"ns\" (median per op),\"iterations\"}.\n",
            argv0);
}

static const ph_op *find_op(const ph_op *ops, size_t count, const char *name, size_t len) {
    for (size_t i = 0; i < count; i++)
        if (strlen(ops[i].name) == len && memcmp(ops[i].name, name, len) == 0) return &ops[i];
    return NULL;
}

int ph_main(int argc, char **argv, const char *impl, const ph_op *ops, size_t op_count) {
    ph_impl = impl;
    const char *selection = NULL;
    int quick = 0, list = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = 1;
        else if (strcmp(argv[i], "--list") == 0) list = 1;
        else if (strcmp(argv[i], "--ops") == 0 && i + 1 < argc) selection = argv[++i];
        else if (strncmp(argv[i], "--ops=", 6) == 0) selection = argv[i] + 6;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout, argv[0]);
            return 0;
        } else {
            fprintf(stderr, "%s: unknown argument '%s'\n", argv[0], argv[i]);
            usage(stderr, argv[0]);
            return 2;
        }
    }
    if (list) {
        for (size_t i = 0; i < op_count; i++) printf("%s\n", ops[i].name);
        return 0;
    }
    const ph_config *cfg = quick ? &ph_quick : &ph_full;
    int failures = 0;
    if (!selection) {
        for (size_t i = 0; i < op_count; i++) failures += measure(&ops[i], cfg) != 0;
    } else {
        const char *p = selection;
        while (*p) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (len > 0) {
                const ph_op *op = find_op(ops, op_count, p, len);
                if (op) failures += measure(op, cfg) != 0;
                else fprintf(stderr, "%s: op '%.*s' is not supported; skipped\n", impl, (int)len, p);
            }
            p += len + (comma ? 1 : 0);
        }
    }
    return failures ? 1 : 0;
}

// MARK: - blobs

static int ph_blobs_reserve_offsets(ph_blobs *b, size_t wanted) {
    if (wanted <= b->offsets_capacity) return 0;
    size_t capacity = b->offsets_capacity ? b->offsets_capacity : 64;
    while (capacity < wanted) capacity *= 2;
    size_t *offsets = realloc(b->offsets, capacity * sizeof(size_t));
    if (!offsets) return -1;
    b->offsets = offsets;
    b->offsets_capacity = capacity;
    return 0;
}

void ph_blobs_clear(ph_blobs *b) {
    b->used = 0;
    b->count = 0;
    if (ph_blobs_reserve_offsets(b, 1) == 0) b->offsets[0] = 0;
}

int ph_blobs_append(ph_blobs *b, const void *bytes, size_t len) {
    if (ph_blobs_reserve_offsets(b, b->count + 2) != 0) return -1;
    if (b->count == 0) b->offsets[0] = 0;
    if (b->used + len > b->capacity) {
        size_t capacity = b->capacity ? b->capacity : 4096;
        while (capacity < b->used + len) capacity *= 2;
        uint8_t *data = realloc(b->data, capacity);
        if (!data) return -1;
        b->data = data;
        b->capacity = capacity;
    }
    memcpy(b->data + b->used, bytes, len);
    b->used += len;
    b->count += 1;
    b->offsets[b->count] = b->used;
    return 0;
}

void ph_blobs_free(ph_blobs *b) {
    free(b->data);
    free(b->offsets);
    memset(b, 0, sizeof(*b));
}
