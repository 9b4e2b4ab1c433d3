/* Small helpers every part of the hub shares (see util.h). */
#define _GNU_SOURCE
#include "util.h"

#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *
hub_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    va_end(ap);
    return s;
}

char *
hub_exe_dir(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return NULL;
    exe[n] = 0;
    return strdup(dirname(exe));
}

void
hub_search_add(hub_search *s, const char *dir)
{
    if (dir && s->n < sizeof(s->dirs) / sizeof(s->dirs[0]))
        s->dirs[s->n++] = strdup(*dir ? dir : ".");
}

void
hub_search_add_env(hub_search *s, const char *var)
{
    const char *v = getenv(var);
    if (!v)
        return;
    char *copy = strdup(v), *p = copy;
    for (;;) {
        char *colon = strchr(p, ':');
        if (colon)
            *colon = 0;
        if (*p)
            hub_search_add(s, p);
        if (!colon)
            break;
        p = colon + 1;
    }
    free(copy);
}

void
hub_search_clear(hub_search *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->dirs[i]);
    s->n = 0;
}

static bool usable(const char *p, int mode)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, mode) == 0;
}

char *
hub_find_file(const hub_search *s, const char *base, const char *name, int mode, char **looked, size_t max_listed,
              const char *rest)
{
    char *found = NULL;
    size_t len = 0;
    FILE *f = looked ? open_memstream(looked, &len) : NULL;
    size_t tried = 0;
    bool one = name[0] == '/' || (base && strchr(name, '/'));
    for (size_t i = 0; one ? i < 1 : i < s->n; i++) {
        char *cand = name[0] == '/' ? strdup(name) : hub_xasprintf("%s/%s", one ? base : s->dirs[i], name);
        if (!found && usable(cand, mode)) {
            found = realpath(cand, NULL);
            if (!found)
                found = strdup(cand);
        }
        if (f && tried < max_listed)
            fprintf(f, "%s%s", tried ? ", " : "", cand);
        else if (f && tried == max_listed && rest)
            fprintf(f, ", %s", rest);
        tried++;
        free(cand);
    }
    if (f)
        fclose(f);
    return found;
}
