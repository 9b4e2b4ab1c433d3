/* Small helpers every benchmark program uses: a monotonic clock, medians, the guest-access wrappers of a
 * bench's address space, and the path of a program built beside the running one. */
#ifndef PLEXUS_BENCH_UTIL_H
#define PLEXUS_BENCH_UTIL_H

#define _GNU_SOURCE
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t bench_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static inline int bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Median of @n samples (sorts them). */
static inline uint64_t bench_median(uint64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), bench_cmp_u64);
    return v[n / 2];
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of @n samples (sorts them). */
static inline double bench_median_double(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
    return v[n / 2];
}

/* The program @name in the folder of the running executable (malloc'd). */
static inline char *bench_sibling(const char *name)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return strdup(name);
    self[n] = 0;
    *strrchr(self, '/') = 0;
    char *p;
    if (asprintf(&p, "%s/%s", self, name) < 0)
        return NULL;
    return p;
}

/* One result line: the figure, the floor it is compared with, the ratio and the goal. */
static inline void bench_line(const char *what, const char *value, const char *floor_name, const char *floor_value,
                              double ratio, const char *goal, int ok)
{
    printf("%-34s %12s | %-36s %12s | ratio %6.2fx  (goal %s) %s\n", what, value, floor_name, floor_value, ratio,
           goal, ok ? "ok" : "MISSED");
}

/* As many open descriptors as the hard limit allows (a hub with many devices holds several each). */
static inline void bench_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

#endif
