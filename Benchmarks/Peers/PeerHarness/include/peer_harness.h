// The measuring loop shared by the C peer harnesses (libsignal-harness, olm-harness).
//
// Protocol (the same for hush-harness):
//   <harness> [--ops a,b,c] [--quick] [--list]
// For each op: set-up (untimed), warm-up, then batches; one JSON object per line on stdout:
//   {"impl":"<impl>","op":"<op>","ns":<median ns per operation over the batches>,"iterations":<timed iterations>}
// `--list` prints the supported op names, one per line. Errors go to stderr; the exit status is 1
// if any op failed (its line is then missing), 2 on bad usage.
#ifndef PEER_HARNESS_H
#define PEER_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Monotonic time in nanoseconds (clock_gettime(CLOCK_MONOTONIC), a vDSO call: ~20 ns).
static inline uint64_t ph_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/// One benchmarked operation. `run` does `n` operations and reports the nanoseconds it timed
/// itself: either the whole loop (tight ops) or the sum of per-iteration slices when each
/// iteration needs untimed preparation (fresh handshakes, inputs that the library destroys).
typedef struct ph_op {
    const char *name;
    /// Untimed, once per op. Returns the op's state, or NULL on failure (after printing why).
    void *(*setup)(void);
    /// Optional, untimed, before every batch of `n` (e.g. pre-encrypt `n` messages). 0 = ok.
    int (*prepare)(void *state, size_t n);
    /// Timed work: `n` operations; stores the measured nanoseconds. 0 = ok.
    int (*run)(void *state, size_t n, uint64_t *elapsed_ns);
    /// Frees the state (also after a failure).
    void (*teardown)(void *state);
    /// Upper bound on `n` per batch (0 = the default cap), e.g. to bound pre-encrypted memory.
    size_t max_batch;
} ph_op;

/// Parses the arguments, runs the selected ops and prints their lines. Returns the exit status.
int ph_main(int argc, char **argv, const char *impl, const ph_op *ops, size_t op_count);

/// Prints "<impl> <op>: <what> failed (<code>)" to stderr; returns -1 for `return ph_fail(...)`.
int ph_fail(const char *what, long code);

/// The op currently running (for error messages).
extern const char *ph_current_op;

/// A growable arena of byte strings, for messages prepared before a batch.
typedef struct ph_blobs {
    uint8_t *data;
    size_t used, capacity;
    size_t *offsets; // count + 1 entries
    size_t count, offsets_capacity;
} ph_blobs;

void ph_blobs_clear(ph_blobs *b);
/// Appends a copy of `len` bytes; returns 0, or -1 if out of memory.
int ph_blobs_append(ph_blobs *b, const void *bytes, size_t len);
static inline uint8_t *ph_blobs_at(const ph_blobs *b, size_t i, size_t *len) {
    *len = b->offsets[i + 1] - b->offsets[i];
    return b->data + b->offsets[i];
}
void ph_blobs_free(ph_blobs *b);

#ifdef __cplusplus
}
#endif

#endif
