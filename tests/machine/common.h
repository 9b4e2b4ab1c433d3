/* Helpers shared by the machine suites: temporary folders and files. */
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
