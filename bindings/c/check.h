/*
 * The checks shared by the C test programs (test_panns.c, test_filter.c, test_sharded.c,
 * test_live.c): CHECK(cond), CHECK_OK(call), CHECK_ERR(call, status, needle), counting into
 * n_passed / n_failed. Include it once, after <panns.h>, <ctype.h>, <stdio.h> and <string.h>.
 */
#ifndef PANNS_TEST_CHECK_H
#define PANNS_TEST_CHECK_H

static int n_passed, n_failed;

#define CHECK(cond)                                                                        \
  do {                                                                                     \
    if (cond) {                                                                            \
      n_passed++;                                                                          \
    } else {                                                                               \
      n_failed++;                                                                          \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error: \"%s\")\n", __FILE__, __LINE__, \
              #cond, panns_last_error_message());                                          \
    }                                                                                      \
  } while (0)

/* A call must fail with `want`, leaving a message that contains `needle` (case-insensitive). */
#define CHECK_ERR(call, want, needle) check_err((call), (want), (needle), #call, __FILE__, __LINE__)
/* A call must succeed and leave an empty message. */
#define CHECK_OK(call) check_err((call), PANNS_OK, "", #call, __FILE__, __LINE__)

static int contains_nocase(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
    if (i == n) return 1;
  }
  return n == 0;
}

static void check_err(PannsStatus got, PannsStatus want, const char *needle, const char *call,
                      const char *file, int line) {
  const char *msg = panns_last_error_message();
  int ok = got == want && msg != NULL &&
           (want == PANNS_OK ? msg[0] == '\0' : (msg[0] != '\0' && contains_nocase(msg, needle)));
  if (ok) {
    n_passed++;
  } else {
    n_failed++;
    fprintf(stderr, "%s:%d: %s returned %d (want %d), message \"%s\" (want it to mention \"%s\")\n",
            file, line, call, (int)got, (int)want, msg ? msg : "(NULL)", needle);
  }
}

#endif
