/*
 * Tests of the live-index C API (panns_live_*, docs/c-api.md "Live indexes"): build, add,
 * search (checked against an exact scan kept here), remove, commit, a reader in a second
 * handle and in a child process that sees the changes after refresh, compaction, the
 * writer lock across processes, a writer killed with SIGKILL, concurrent searches, the
 * in-memory kind, and bad input.
 *
 * The last line printed is "N passed, N failed"; the exit status is non-zero on failure.
 */
#define _GNU_SOURCE
#include <panns.h>

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define DIM 12
#define N 1500
#define K 10

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static float uniform(void) { /* in [-1, 1) */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static char tmp_dir[64];
static char index_path[128];

/* The model: which labels are live and their vectors (labels are 1000 + 7 * slot). */
#define SLOTS (N + 200)
static float vectors[SLOTS][DIM];
static int live[SLOTS];
static uint64_t label_of(size_t slot) { return 1000 + 7 * (uint64_t)slot; }

static size_t model_len(void) {
  size_t n = 0;
  for (size_t i = 0; i < SLOTS; i++) n += (size_t)live[i];
  return n;
}

/* The exact K nearest live labels of q (squared L2, ties by label). */
static void exact_knn(const float *q, uint64_t *out) {
  float best_d[K];
  uint64_t best_l[K];
  size_t have = 0;
  for (size_t s = 0; s < SLOTS; s++) {
    if (!live[s]) continue;
    float d = 0;
    for (size_t j = 0; j < DIM; j++) d += (vectors[s][j] - q[j]) * (vectors[s][j] - q[j]);
    uint64_t l = label_of(s);
    size_t pos = have;
    while (pos > 0 && (best_d[pos - 1] > d || (best_d[pos - 1] == d && best_l[pos - 1] > l))) pos--;
    if (pos >= K) continue;
    size_t last = have < K ? have : K - 1;
    for (size_t m = last; m > pos; m--) {
      best_d[m] = best_d[m - 1];
      best_l[m] = best_l[m - 1];
    }
    best_d[pos] = d;
    best_l[pos] = l;
    if (have < K) have++;
  }
  memcpy(out, best_l, have * sizeof *out);
}

/* Adds slots [from, to) with fresh random vectors through the C API and the model. */
static PannsStatus add_slots(PannsLive *w, size_t from, size_t to) {
  size_t n = to - from;
  uint64_t *labels = calloc(n, sizeof *labels);
  float *rows = calloc(n * DIM, sizeof *rows);
  for (size_t i = 0; i < n; i++) {
    labels[i] = label_of(from + i);
    for (size_t j = 0; j < DIM; j++) rows[i * DIM + j] = uniform();
  }
  PannsStatus st = panns_live_add(w, labels, rows, n, DIM);
  if (st == PANNS_OK) {
    for (size_t i = 0; i < n; i++) {
      memcpy(vectors[from + i], rows + i * DIM, sizeof vectors[0]);
      live[from + i] = 1;
    }
  }
  free(labels);
  free(rows);
  return st;
}

/* Every live slot is held with its vector, every other one is not. */
static int agrees_with_model(const PannsLive *h) {
  if (panns_live_len(h) != model_len()) return 0;
  for (size_t s = 0; s < SLOTS; s++) {
    if (panns_live_contains(h, label_of(s)) != live[s]) return 0;
    if (live[s]) {
      float v[DIM];
      if (panns_live_get(h, label_of(s), v, DIM) != PANNS_OK) return 0;
      if (memcmp(v, vectors[s], sizeof v) != 0) return 0;
    }
  }
  return 1;
}

/* Recall@K against the exact scan over 50 random queries at a budget well below N/2. */
static double recall(const PannsLive *h, size_t budget) {
  size_t found = 0, total = 0;
  for (int q = 0; q < 50; q++) {
    float query[DIM];
    for (size_t j = 0; j < DIM; j++) query[j] = uniform();
    uint64_t got[K], want[K];
    size_t n = 0;
    PannsSearchStats st;
    if (panns_live_search_with_stats(h, query, DIM, K, budget, got, NULL, &n, &st) != PANNS_OK) return -1;
    if (st.exact_scan != 0 || n != K) return -1;
    exact_knn(query, want);
    for (size_t a = 0; a < K; a++)
      for (size_t b = 0; b < K; b++) found += got[a] == want[b];
    total += K;
  }
  return (double)found / (double)total;
}

static void test_round_trip(void) {
  PannsBuildOptions o = panns_build_options_default();
  o.n_trees = 16;
  PannsLive *w = NULL, *r = NULL;
  CHECK_OK(panns_live_create(index_path, DIM, PANNS_EUCLIDEAN, &o, 0, &w));
  CHECK(w != NULL && panns_live_is_writable(w) == 1);
  CHECK(panns_live_dim(w) == DIM && panns_live_metric(w) == PANNS_EUCLIDEAN);
  CHECK_OK(add_slots(w, 0, N));
  CHECK(panns_live_len(w) == N && panns_live_pending(w) == N && panns_live_generation(w) == 0);
  /* Each added item is its own nearest neighbour, under its label. */
  for (size_t s = 0; s < N; s += 97) {
    uint64_t labels[3];
    float d[3];
    size_t n = 0;
    CHECK_OK(panns_live_search(w, vectors[s], DIM, 3, 0, labels, d, &n));
    CHECK(n == 3 && labels[0] == label_of(s) && d[0] == 0.0f);
  }
  /* A reader opened before the commit sees nothing until commit + refresh. */
  CHECK_OK(panns_live_open(index_path, 0, &r));
  CHECK(panns_live_len(r) == 0 && panns_live_is_writable(r) == 0);
  int changed = -1;
  CHECK_OK(panns_live_refresh(r, &changed));
  CHECK(changed == 0);
  CHECK_OK(panns_live_commit(w));
  CHECK(panns_live_pending(w) == 0);
  CHECK_OK(panns_live_refresh(r, &changed));
  CHECK(changed == 1);
  CHECK(agrees_with_model(r));
  /* Compact: generation 1; approximate search now walks the base's trees. */
  CHECK_OK(panns_live_compact(w));
  CHECK(panns_live_generation(w) == 1 && panns_live_base_len(w) == N && panns_live_delta_len(w) == 0);
  /* Churn: remove 100 (plus an unknown label), replace 50, add 200. */
  uint64_t gone[101];
  for (size_t i = 0; i < 100; i++) {
    gone[i] = label_of(3 * i);
    live[3 * i] = 0;
  }
  gone[100] = 5; /* never held */
  size_t removed = 0;
  CHECK_OK(panns_live_remove(w, gone, 101, &removed));
  CHECK(removed == 100);
  CHECK_OK(add_slots(w, 1000, 1050)); /* replaces */
  CHECK_OK(add_slots(w, N, N + 200)); /* new */
  CHECK(panns_live_tombstones(w) == 150 && panns_live_delta_len(w) == 250);
  CHECK(agrees_with_model(w));
  double rc = recall(w, 300);
  printf("live recall@%d at budget 300 (n = %zu, after churn): %.3f\n", K, model_len(), rc);
  CHECK(rc >= 0.85);
  /* The reader moves to generation 1 on refresh, then to the churned state after commit. */
  CHECK_OK(panns_live_refresh(r, &changed));
  CHECK(changed == 1 && panns_live_generation(r) == 1 && panns_live_len(r) == N);
  /* The commit compacts by itself: the delta (250) is above a tenth of the base (1500). */
  CHECK_OK(panns_live_commit(w));
  CHECK(panns_live_generation(w) == 2 && panns_live_delta_len(w) == 0 && panns_live_tombstones(w) == 0);
  CHECK_OK(panns_live_refresh(r, &changed));
  CHECK(changed == 1 && panns_live_generation(r) == 2);
  CHECK(agrees_with_model(r));
  /* Reader and writer answer every query alike. */
  int same = 1;
  for (int q = 0; q < 20; q++) {
    float query[DIM];
    for (size_t j = 0; j < DIM; j++) query[j] = uniform();
    uint64_t a[K], b[K];
    float da[K], db[K];
    size_t na = 0, nb = 0;
    CHECK_OK(panns_live_search(w, query, DIM, K, 100, a, da, &na));
    CHECK_OK(panns_live_search(r, query, DIM, K, 100, b, db, &nb));
    same &= na == nb && memcmp(a, b, sizeof a) == 0 && memcmp(da, db, sizeof da) == 0;
  }
  CHECK(same);
  /* A second writer, in this process or another, gets PANNS_LOCKED. */
  PannsLive *second = (PannsLive *)&second;
  CHECK_ERR(panns_live_open(index_path, 1, &second), PANNS_LOCKED, "another writer");
  CHECK(second == NULL);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    /* The child: the lock is held across processes; a reader sees the last commit. */
    PannsLive *c = NULL;
    int bad = panns_live_open(index_path, 1, &c) != PANNS_LOCKED;
    bad |= panns_live_open(index_path, 0, &c) != PANNS_OK;
    bad |= !agrees_with_model(c);
    panns_live_free(c);
    _exit(bad);
  }
  int status = 0;
  CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  /* A reader may not change anything. */
  uint64_t one = label_of(1);
  CHECK_ERR(panns_live_remove(r, &one, 1, NULL), PANNS_READ_ONLY, "read-only");
  CHECK_ERR(panns_live_commit(r), PANNS_READ_ONLY, "read-only");
  /* Compact again; after the writer is gone, a new writer reopens everything. */
  CHECK_OK(panns_live_compact(w));
  CHECK(panns_live_generation(w) == 3 && panns_live_tombstones(w) == 0);
  panns_live_free(w);
  CHECK_OK(panns_live_open(index_path, 1, &w));
  CHECK(agrees_with_model(w) && panns_live_generation(w) == 3);
  CHECK_OK(panns_live_refresh(r, &changed));
  CHECK(changed == 1 && agrees_with_model(r));
  /* The base is an ordinary index file with labels: panns_index_open reads it. */
  PannsIndex *plain = NULL;
  CHECK_OK(panns_index_open(index_path, PANNS_OPEN_VERIFY, &plain));
  CHECK(panns_index_len(plain) == model_len());
  panns_index_free(plain);
  panns_live_free(r);
  panns_live_free(w);
}

/* Searches from several threads at once agree with one thread's answers. */
#define T_THREADS 4
struct job {
  const PannsLive *h;
  const float *queries;
  const uint64_t *expected;
  int mismatches;
};
static void *worker(void *arg) {
  struct job *j = arg;
  for (int rep = 0; rep < 3; rep++)
    for (int q = 0; q < 20; q++) {
      uint64_t got[K];
      size_t n = 0;
      if (panns_live_search(j->h, j->queries + q * DIM, DIM, K, 100, got, NULL, &n) != PANNS_OK || n != K ||
          memcmp(got, j->expected + q * K, sizeof got) != 0)
        j->mismatches++;
    }
  return NULL;
}

static void test_threads_and_batch(void) {
  PannsLive *r = NULL;
  CHECK_OK(panns_live_open(index_path, 0, &r));
  float queries[20 * DIM];
  for (size_t i = 0; i < 20 * DIM; i++) queries[i] = uniform();
  uint64_t expected[20 * K];
  for (int q = 0; q < 20; q++) {
    size_t n = 0;
    CHECK_OK(panns_live_search(r, queries + q * DIM, DIM, K, 100, expected + q * K, NULL, &n));
  }
  pthread_t t[T_THREADS];
  struct job jobs[T_THREADS];
  for (int i = 0; i < T_THREADS; i++) {
    jobs[i] = (struct job){r, queries, expected, 0};
    CHECK(pthread_create(&t[i], NULL, worker, &jobs[i]) == 0);
  }
  int mismatches = 0;
  for (int i = 0; i < T_THREADS; i++) {
    pthread_join(t[i], NULL);
    mismatches += jobs[i].mismatches;
  }
  CHECK(mismatches == 0);
  uint64_t batch[20 * K];
  float dist[20 * K];
  CHECK_OK(panns_live_search_batch(r, queries, 20, DIM, K, 100, batch, dist));
  CHECK(memcmp(batch, expected, sizeof batch) == 0);
  panns_live_free(r);
}

static void test_bad_input(void) {
  char path[160];
  snprintf(path, sizeof path, "%s/bad.panns", tmp_dir);
  PannsLive *w = (PannsLive *)&w;
  CHECK_ERR(panns_live_create(path, DIM, 9, NULL, 0, &w), PANNS_INVALID_ARGUMENT, "metric code 9");
  CHECK(w == NULL);
  CHECK_ERR(panns_live_open(path, 0, &w), PANNS_IO, "no live index here");
  CHECK_ERR(panns_live_open(path, 7, &w), PANNS_INVALID_ARGUMENT, "writable = 7");
  CHECK_OK(panns_live_create(path, DIM, PANNS_ANGULAR, NULL, 0, &w));
  PannsLive *other = (PannsLive *)&other;
  CHECK_ERR(panns_live_create(path, DIM, 0, NULL, 0, &other), PANNS_LOCKED, "lock");
  CHECK(other == NULL);
  uint64_t labels[3] = {1, 2, 3};
  float rows[3 * DIM];
  for (size_t i = 0; i < 3 * DIM; i++) rows[i] = uniform();
  /* NaN, zero vector (angular), wrong dimension, duplicate label: an error, nothing applied. */
  rows[DIM + 4] = NAN;
  CHECK_ERR(panns_live_add(w, labels, rows, 3, DIM), PANNS_NON_FINITE, "batch row 1 (label 2)");
  CHECK(panns_live_len(w) == 0);
  rows[DIM + 4] = 0.5f;
  float saved[DIM];
  memcpy(saved, rows + 2 * DIM, sizeof saved);
  memset(rows + 2 * DIM, 0, sizeof saved);
  CHECK_ERR(panns_live_add(w, labels, rows, 3, DIM), PANNS_ZERO_VECTOR, "batch row 2");
  CHECK(panns_live_len(w) == 0);
  memcpy(rows + 2 * DIM, saved, sizeof saved);
  CHECK_ERR(panns_live_add(w, labels, rows, 1, DIM - 1), PANNS_DIMENSION_MISMATCH, "dimension");
  uint64_t dup[3] = {1, 2, 1};
  CHECK_ERR(panns_live_add(w, dup, rows, 3, DIM), PANNS_INVALID_ARGUMENT, "also on row 0");
  CHECK(panns_live_len(w) == 0 && panns_live_pending(w) == 0);
  CHECK_ERR(panns_live_add(w, NULL, rows, 3, DIM), PANNS_NULL_POINTER, "labels");
  CHECK_ERR(panns_live_add(NULL, labels, rows, 3, DIM), PANNS_NULL_POINTER, "live");
  CHECK_OK(panns_live_add(w, labels, rows, 3, DIM));
  CHECK(panns_live_len(w) == 3);
  /* Queries and get. */
  uint64_t out[4];
  size_t n = 0;
  float zero[DIM] = {0};
  CHECK_ERR(panns_live_search(w, zero, DIM, 2, 0, out, NULL, &n), PANNS_ZERO_VECTOR, "query");
  CHECK_ERR(panns_live_search(w, rows, DIM, 0, 0, out, NULL, &n), PANNS_INVALID_ARGUMENT, "k");
  CHECK_ERR(panns_live_search(w, rows, DIM + 1, 2, 0, out, NULL, &n), PANNS_DIMENSION_MISMATCH, "");
  CHECK_ERR(panns_live_search(w, rows, DIM, 2, 0, NULL, NULL, &n), PANNS_NULL_POINTER, "labels_out");
  CHECK_OK(panns_live_search(w, rows, DIM, 4, 0, out, NULL, &n));
  CHECK(n == 3 && out[0] == 1);
  float v[DIM];
  CHECK_ERR(panns_live_get(w, 99, v, DIM), PANNS_OUT_OF_RANGE, "label 99");
  CHECK_ERR(panns_live_get(w, 1, v, DIM - 1), PANNS_BUFFER_TOO_SMALL, "");
  /* The _e twin hands the message to the caller. */
  char *err = NULL;
  CHECK(panns_live_get_e(w, 99, v, DIM, &err) == PANNS_OUT_OF_RANGE);
  CHECK(err != NULL && strstr(err, "label 99") != NULL);
  panns_error_free(err);
  CHECK(strcmp(panns_status_string(PANNS_READ_ONLY), "live index open read-only") == 0);
  /* Accessors on NULL. */
  CHECK(panns_live_len(NULL) == 0 && panns_live_contains(NULL, 1) == 0 && panns_live_metric(NULL) == UINT32_MAX);
  panns_live_free(NULL);
  panns_live_free(w);
  char aux[200];
  unlink(path);
  snprintf(aux, sizeof aux, "%s.log", path);
  unlink(aux);
  snprintf(aux, sizeof aux, "%s.lock", path);
  unlink(aux);
}

static void test_from_index(void) {
  char path[160];
  snprintf(path, sizeof path, "%s/from.panns", tmp_dir);
  PannsBuilder *b = NULL;
  PannsIndex *idx = NULL;
  float rows[100 * DIM];
  uint64_t labels[100];
  for (size_t i = 0; i < 100 * DIM; i++) rows[i] = uniform();
  for (size_t i = 0; i < 100; i++) labels[i] = 1000000 + i;
  CHECK_OK(panns_builder_new(DIM, PANNS_EUCLIDEAN, &b));
  CHECK_OK(panns_builder_add_batch(b, rows, 100, DIM));
  CHECK_OK(panns_builder_build(b, NULL, &idx));
  panns_builder_free(b);
  PannsLive *h = NULL;
  CHECK_ERR(panns_live_from_index(idx, path, labels, 99, &h), PANNS_INVALID_ARGUMENT, "n_labels = 99");
  CHECK_OK(panns_live_from_index(idx, path, labels, 100, &h));
  panns_index_free(idx); /* the live index does not need it */
  uint64_t out[1];
  size_t n = 0;
  CHECK_OK(panns_live_search(h, rows + 42 * DIM, DIM, 1, 0, out, NULL, &n));
  CHECK(n == 1 && out[0] == 1000042);
  CHECK(panns_live_generation(h) == 1 && panns_live_len(h) == 100);
  panns_live_free(h);
  char aux[200];
  unlink(path);
  snprintf(aux, sizeof aux, "%s.log", path);
  unlink(aux);
  snprintf(aux, sizeof aux, "%s.lock", path);
  unlink(aux);
}

/* A writer killed with SIGKILL: its commits survive, its uncommitted changes do not, and
 * its lock is released with it. */
static void test_killed_writer(void) {
  char path[160];
  snprintf(path, sizeof path, "%s/killed.panns", tmp_dir);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    PannsLive *w = NULL;
    float a[DIM], b[DIM];
    for (size_t j = 0; j < DIM; j++) {
      a[j] = (float)j;
      b[j] = -(float)j;
    }
    uint64_t la = 1, lb = 2;
    if (panns_live_create(path, DIM, PANNS_EUCLIDEAN, NULL, 0, &w) != PANNS_OK) _exit(3);
    if (panns_live_add(w, &la, a, 1, DIM) != PANNS_OK || panns_live_commit(w) != PANNS_OK) _exit(4);
    if (panns_live_add(w, &lb, b, 1, DIM) != PANNS_OK) _exit(5);
    kill(getpid(), SIGKILL); /* dies holding the lock, label 2 uncommitted */
    _exit(6);
  }
  int status = 0;
  CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  PannsLive *w = NULL;
  CHECK_OK(panns_live_open(path, 1, &w)); /* the lock died with its holder */
  CHECK(panns_live_len(w) == 1 && panns_live_contains(w, 1) == 1 && panns_live_contains(w, 2) == 0);
  panns_live_free(w);
  char aux[200];
  unlink(path);
  snprintf(aux, sizeof aux, "%s.log", path);
  unlink(aux);
  snprintf(aux, sizeof aux, "%s.lock", path);
  unlink(aux);
}

/* A NULL path: a live index in memory, changed, compacted, saved; the file opens as a live index. */
static void test_in_memory(void) {
  char path[160];
  snprintf(path, sizeof path, "%s/saved.panns", tmp_dir);
  PannsLive *m = NULL, *r = NULL;
  CHECK_OK(panns_live_create(NULL, DIM, PANNS_EUCLIDEAN, NULL, 0, &m));
  CHECK(m != NULL && panns_live_is_in_memory(m) == 1 && panns_live_is_writable(m) == 1);
  uint64_t labels[50];
  float rows[50 * DIM];
  for (size_t i = 0; i < 50; i++) labels[i] = 77 + 2 * i;
  for (size_t i = 0; i < 50 * DIM; i++) rows[i] = uniform();
  CHECK_OK(panns_live_add(m, labels, rows, 50, DIM));
  size_t removed = 0;
  CHECK_OK(panns_live_remove(m, labels + 10, 5, &removed));
  CHECK(removed == 5 && panns_live_len(m) == 45);
  CHECK_OK(panns_live_commit(m));
  CHECK_OK(panns_live_compact(m));
  CHECK(panns_live_generation(m) == 1 && panns_live_delta_len(m) == 0);
  CHECK(access(path, F_OK) != 0); /* nothing written so far */
  CHECK_OK(panns_live_save(m, path));
  CHECK_OK(panns_live_open(path, 0, &r));
  CHECK(panns_live_is_in_memory(r) == 0 && panns_live_len(r) == 45);
  int same = 1;
  for (size_t i = 0; i < 50; i++) {
    same &= panns_live_contains(r, labels[i]) == (i < 10 || i >= 15);
    uint64_t a[3], b[3];
    size_t na = 0, nb = 0;
    CHECK_OK(panns_live_search(m, rows + i * DIM, DIM, 3, 0, a, NULL, &na));
    CHECK_OK(panns_live_search(r, rows + i * DIM, DIM, 3, 0, b, NULL, &nb));
    same &= na == 3 && nb == 3 && memcmp(a, b, sizeof a) == 0;
  }
  CHECK(same);
  panns_live_free(r);
  panns_live_free(m);
  unlink(path);
}

int main(void) {
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/panns-c-live-XXXXXX");
  if (!mkdtemp(tmp_dir)) {
    perror("mkdtemp");
    return 2;
  }
  snprintf(index_path, sizeof index_path, "%s/live.panns", tmp_dir);
  printf("panns %s: C live-index tests\n", panns_version());
  test_round_trip();
  test_threads_and_batch();
  test_bad_input();
  test_from_index();
  test_in_memory();
  test_killed_writer();
  char aux[200];
  unlink(index_path);
  snprintf(aux, sizeof aux, "%s.log", index_path);
  unlink(aux);
  snprintf(aux, sizeof aux, "%s.lock", index_path);
  unlink(aux);
  rmdir(tmp_dir);
  printf("%d passed, %d failed\n", n_passed, n_failed);
  return n_failed == 0 ? 0 : 1;
}
