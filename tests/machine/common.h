/* Helpers shared by the machine suites: temporary folders and files, a run's --stats figures. */
#ifndef PLEXUS_TEST_MACHINE_COMMON_H
#define PLEXUS_TEST_MACHINE_COMMON_H


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static inline char *tmpdir_new(void)
{
    char *d = strdup("/tmp/plexus-machine-test-XXXXXX");
    if (!mkdtemp(d))
        abort();
    return d;
}

static inline char *write_file(const char *dir, const char *name, const char *text, size_t len, int mode)
{
    char *p;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        abort();
    FILE *f = fopen(p, "wb");
    if (!f)
        abort();
    fwrite(text, 1, len, f);
    fclose(f);
    chmod(p, (mode_t)mode);
    return p;
}

/* The whole of the file at @path, NUL-terminated (NULL if it cannot be read); its length in *@len if given. */
static inline char *read_whole_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&buf, &cap, '\0', f);
    fclose(f);
    if (n < 0) {
        free(buf);
        return NULL;
    }
    if (len)
        *len = (size_t)n;
    return buf;
}

/* The number after @key in a run's output (`--stats`), 0 if the key is absent. */
static inline unsigned long long stat_value(const char *out, const char *key)
{
    const char *p = strstr(out, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static inline void tmpdir_remove(char *dir)
{
    char *cmd;
    if (asprintf(&cmd, "rm -rf '%s'", dir) >= 0) {
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", dir);
        free(cmd);
    }
    free(dir);
}

#endif
