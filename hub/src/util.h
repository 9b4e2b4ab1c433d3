/*
 * Small helpers every part of the hub shares: formatted allocation and finding files (device programs, plugins,
 * firmware) the one way the hub does it.
 */
#ifndef PLEXUS_HUB_UTIL_H
#define PLEXUS_HUB_UTIL_H

#include <stdbool.h>
#include <stddef.h>

/* vasprintf that aborts when out of memory (for messages and small paths). */
char *hub_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The folder of the running executable (/proc/self/exe), malloc'd; NULL if unknown. */
char *hub_exe_dir(void);

/*
 * The search a name goes through. hub_search_add() appends the folder @dir (NULL ignored); hub_search_add_env()
 * each folder of the colon-separated variable @var (empty entries are skipped).
 */
typedef struct hub_search {
    char *dirs[64];
    size_t n;
} hub_search;
void hub_search_add(hub_search *s, const char *dir);
void hub_search_add_env(hub_search *s, const char *var);
void hub_search_clear(hub_search *s);

/*
 * Find @name: an absolute name as it is; a relative one holding a '/' relative to @base when @base is given;
 * otherwise in each folder of @s in order. A candidate counts when it is a regular file the caller may access
 * with @mode (R_OK, X_OK). Returns its
 * absolute path (malloc'd) or NULL. If @looked is not NULL it receives what was tried, comma-separated, the
 * first @max_listed candidates by name and then "$PATH"-style @rest (NULL: nothing more), for error messages.
 */
char *hub_find_file(const hub_search *s, const char *base, const char *name, int mode, char **looked,
                    size_t max_listed, const char *rest);

#endif
