/*
 * Tests of the live-index C API (panns_live_*, docs/c-api.md "Live indexes"): build, add,
 * search (checked against an exact scan kept here), remove, commit, a reader in a second
 * handle and in a child process that sees the changes after refresh, compaction, the
 * writer lock across processes, a writer killed with SIGKILL, concurrent searches, the
 * in-memory kind, filtered search by label, and bad input.
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

/* Filtered search (panns_live_search_filtered, _batch_filtered): allow- and deny-lists and a
 * predicate agree with each other and, at a budget covering every item, with an exact scan
 * over the allowed live labels kept here; at a budget well below n/2 they return only allowed
 * live labels with good recall and differ from the unfiltered answer; removed and unknown
 * labels match nothing; a negative predicate aborts with PANNS_CALLBACK_FAILED. */
#define F_BASE 1200
#define F_DELTA 100
#define F_SLOTS (F_BASE + F_DELTA)
static float f_vec[F_SLOTS][DIM];
static int f_live[F_SLOTS];
static uint64_t f_label(size_t slot) { return 50000 + 3 * (uint64_t)slot; }
static int f_even(uint64_t label) { return label % 2 == 0; }

/* The exact K nearest live even labels of q (squared L2, ties by label); returns how many. */
static size_t f_exact(const float *q, uint64_t *out) {
  float best_d[K];
  uint64_t best_l[K];
  size_t have = 0;
  for (size_t s = 0; s < F_SLOTS; s++) {
    if (!f_live[s] || !f_even(f_label(s))) continue;
    float d = 0;
    for (size_t j = 0; j < DIM; j++) d += (f_vec[s][j] - q[j]) * (f_vec[s][j] - q[j]);
    uint64_t l = f_label(s);
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
  return have;
}

struct f_pred {
  int calls;
  int abort_after; /* -1: never */
};
static int f_pred_cb(uint64_t label, void *user_data) {
  struct f_pred *p = user_data;
  int n = __atomic_fetch_add(&p->calls, 1, __ATOMIC_SEQ_CST);
  if (p->abort_after >= 0 && n >= p->abort_after) return -1;
  return f_even(label) ? 1 : 0;
}

static void test_filtered(void) {
  PannsBuildOptions o = panns_build_options_default();
  o.n_trees = 16;
  PannsLive *m = NULL;
  CHECK_OK(panns_live_create(NULL, DIM, PANNS_EUCLIDEAN, &o, 0, &m));
  /* A base of F_BASE items, every 25th then removed, and F_DELTA more in the delta. */
  uint64_t labels[F_SLOTS];
  for (size_t s = 0; s < F_SLOTS; s++) {
    labels[s] = f_label(s);
    for (size_t j = 0; j < DIM; j++) f_vec[s][j] = uniform();
  }
  CHECK_OK(panns_live_add(m, labels, &f_vec[0][0], F_BASE, DIM));
  CHECK_OK(panns_live_compact(m));
  uint64_t gone[F_BASE / 25];
  for (size_t i = 0; i < F_BASE / 25; i++) gone[i] = f_label(25 * i);
  size_t removed = 0;
  CHECK_OK(panns_live_remove(m, gone, F_BASE / 25, &removed));
  CHECK(removed == F_BASE / 25);
  CHECK_OK(panns_live_add(m, labels + F_BASE, &f_vec[F_BASE][0], F_DELTA, DIM));
  for (size_t s = 0; s < F_SLOTS; s++) f_live[s] = s >= F_BASE || s % 25 != 0;
  CHECK(panns_live_delta_len(m) == F_DELTA && panns_live_tombstones(m) == F_BASE / 25);

  /* Allow-list: the even live labels, the removed even ones and labels never held.
   * Deny-list: the odd live labels. Predicate: even labels. */
  static uint64_t allow[F_SLOTS + 3], deny[F_SLOTS];
  size_t n_allow = 0, n_deny = 0;
  for (size_t s = 0; s < F_SLOTS; s++) {
    if (f_even(f_label(s))) allow[n_allow++] = f_label(s);
    else if (f_live[s]) deny[n_deny++] = f_label(s);
  }
  allow[n_allow++] = 2;
  allow[n_allow++] = 4000000;
  allow[n_allow++] = UINT64_MAX - 1;
  PannsLabelFilter fa = {0}, fd = {0}, fp = {0};
  fa.kind = PANNS_LABEL_FILTER_ALLOW_LABELS;
  fa.labels = allow;
  fa.n_labels = n_allow;
  fd.kind = PANNS_LABEL_FILTER_DENY_LABELS;
  fd.labels = deny;
  fd.n_labels = n_deny;
  struct f_pred pred = {0, -1};
  fp.kind = PANNS_LABEL_FILTER_PREDICATE;
  fp.predicate = f_pred_cb;
  fp.user_data = &pred;

  const size_t small = 100, all = 10 * F_SLOTS; /* well below n/2; above n */
  size_t found = 0, total = 0;
  int exact_ok = 1, agree = 1, only_allowed = 1, full = 1, differs = 0;
  float queries[30 * DIM];
  for (size_t i = 0; i < 30 * DIM; i++) queries[i] = uniform();
  for (int q = 0; q < 30; q++) {
    const float *query = queries + q * DIM;
    uint64_t want[K], a[K], d[K], p[K], u[K];
    float da[K], dd[K], dp[K];
    size_t nw = f_exact(query, want), na = 0, nd = 0, np = 0, nu = 0;
    CHECK_OK(panns_live_search_filtered(m, query, DIM, K, all, &fa, a, da, &na));
    exact_ok &= na == nw && memcmp(a, want, nw * sizeof *a) == 0;
    CHECK_OK(panns_live_search_filtered(m, query, DIM, K, all, &fp, p, dp, &np));
    exact_ok &= np == nw && memcmp(p, want, nw * sizeof *p) == 0;
    CHECK_OK(panns_live_search_filtered(m, query, DIM, K, small, &fa, a, da, &na));
    CHECK_OK(panns_live_search_filtered(m, query, DIM, K, small, &fd, d, dd, &nd));
    CHECK_OK(panns_live_search_filtered(m, query, DIM, K, small, &fp, p, dp, &np));
    CHECK_OK(panns_live_search(m, query, DIM, K, small, u, NULL, &nu));
    /* The three filters allow the same live items: the same walk, the same answer. */
    agree &= na == nd && na == np && memcmp(a, d, na * sizeof *a) == 0 && memcmp(a, p, na * sizeof *a) == 0 &&
             memcmp(da, dd, na * sizeof *da) == 0;
    full &= na == K;
    for (size_t r = 0; r < na; r++) {
      only_allowed &= f_even(a[r]) && panns_live_contains(m, a[r]) == 1;
      for (size_t w = 0; w < nw; w++) found += a[r] == want[w];
      if (r > 0) only_allowed &= da[r - 1] <= da[r];
    }
    total += nw;
    differs += nu != na || memcmp(u, a, na * sizeof *u) != 0;
  }
  CHECK(exact_ok);
  CHECK(agree);
  CHECK(only_allowed);
  CHECK(full);
  CHECK(differs >= 28);
  double rc = (double)found / (double)total;
  printf("filtered live recall@%d at budget %zu (half the labels allowed): %.3f\n", K, small, rc);
  CHECK(rc >= 0.8);
  CHECK(pred.calls > 30 * K);

  /* NULL and zero filters are the plain search; empty and unknown-only allow-lists give nothing. */
  const float *query = queries;
  uint64_t a[K], b[K];
  float da[K], db[K];
  size_t na = 0, nb = 0;
  PannsLabelFilter zero = {0};
  CHECK_OK(panns_live_search(m, query, DIM, K, small, a, da, &na));
  CHECK_OK(panns_live_search_filtered(m, query, DIM, K, small, NULL, b, db, &nb));
  CHECK(na == K && nb == na && memcmp(a, b, sizeof a) == 0 && memcmp(da, db, sizeof da) == 0);
  CHECK_OK(panns_live_search_filtered(m, query, DIM, K, small, &zero, b, db, &nb));
  CHECK(nb == na && memcmp(a, b, sizeof a) == 0);
  PannsLabelFilter empty = {0};
  empty.kind = PANNS_LABEL_FILTER_ALLOW_LABELS;
  nb = 99;
  CHECK_OK(panns_live_search_filtered(m, query, DIM, K, small, &empty, b, NULL, &nb));
  CHECK(nb == 0);
  PannsLabelFilter unknown = {0};
  unknown.kind = PANNS_LABEL_FILTER_ALLOW_LABELS;
  unknown.labels = allow + n_allow - 3; /* the three labels never held */
  unknown.n_labels = 3;
  CHECK_OK(panns_live_search_filtered(m, query, DIM, K, all, &unknown, b, NULL, &nb));
  CHECK(nb == 0);
  /* Removed labels match nothing, even when allowed. */
  PannsLabelFilter dead = {0};
  dead.kind = PANNS_LABEL_FILTER_ALLOW_LABELS;
  dead.labels = gone;
  dead.n_labels = F_BASE / 25;
  CHECK_OK(panns_live_search_filtered(m, query, DIM, K, small, &dead, b, NULL, &nb));
  CHECK(nb == 0);
  CHECK_OK(panns_live_search_filtered(m, query, DIM, K, all, &dead, b, NULL, &nb));
  CHECK(nb == 0);

  /* Batch: the same rows as single searches, with counts; short rows padded. */
  uint64_t bl[30 * K];
  float bd[30 * K];
  size_t counts[30];
  CHECK_OK(panns_live_search_batch_filtered(m, queries, 30, DIM, K, small, &fa, bl, bd, counts));
  int same = 1;
  for (int q = 0; q < 30; q++) {
    CHECK_OK(panns_live_search_filtered(m, queries + q * DIM, DIM, K, small, &fa, a, da, &na));
    same &= counts[q] == na && memcmp(bl + q * K, a, na * sizeof *a) == 0;
  }
  CHECK(same);
  PannsLabelFilter two = {0};
  two.kind = PANNS_LABEL_FILTER_ALLOW_LABELS;
  two.labels = deny; /* two live odd labels */
  two.n_labels = 2;
  CHECK_OK(panns_live_search_batch_filtered(m, queries, 3, DIM, K, small, &two, bl, bd, counts));
  CHECK(counts[0] == 2 && counts[1] == 2 && counts[2] == 2);
  CHECK(bl[2] == UINT64_MAX && bl[K - 1] == UINT64_MAX && isinf(bd[K - 1]));
  CHECK((bl[0] == deny[0] || bl[0] == deny[1]) && (bl[1] == deny[0] || bl[1] == deny[1]) && bl[0] != bl[1]);

  /* A negative predicate aborts: PANNS_CALLBACK_FAILED, no result, no further call. */
  pred.calls = 0;
  pred.abort_after = 3;
  nb = 77;
  CHECK_ERR(panns_live_search_filtered(m, query, DIM, K, small, &fp, b, NULL, &nb), PANNS_CALLBACK_FAILED,
            "returned -1 for label");
  CHECK(pred.calls == 4 && nb == 77);
  pred.calls = 0;
  pred.abort_after = 50;
  CHECK_ERR(panns_live_search_batch_filtered(m, queries, 30, DIM, K, small, &fp, bl, NULL, NULL),
            PANNS_CALLBACK_FAILED, "search aborted");
  char *err = NULL;
  pred.calls = 0;
  CHECK(panns_live_search_filtered_e(m, query, DIM, K, small, &fp, b, NULL, &nb, &err) == PANNS_CALLBACK_FAILED);
  CHECK(err != NULL && strstr(err, "search aborted") != NULL);
  panns_error_free(err);
  /* Bad filters. */
  PannsLabelFilter bad = {0};
  bad.kind = 7;
  CHECK_ERR(panns_live_search_filtered(m, query, DIM, K, small, &bad, b, NULL, &nb), PANNS_INVALID_ARGUMENT,
            "kind 7");
  bad.kind = PANNS_LABEL_FILTER_PREDICATE;
  CHECK_ERR(panns_live_search_filtered(m, query, DIM, K, small, &bad, b, NULL, &nb), PANNS_NULL_POINTER,
            "filter->predicate");
  bad.kind = PANNS_LABEL_FILTER_DENY_LABELS;
  bad.n_labels = 4;
  CHECK_ERR(panns_live_search_filtered(m, query, DIM, K, small, &bad, b, NULL, &nb), PANNS_NULL_POINTER,
            "filter->labels");
  panns_live_free(m);
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
  test_filtered();
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
