/*
 * A YAML document as a plain tree with source lines: the one parse of a machine description, which --set
 * overrides edit and config.c checks and reads.
 *
 * Lifetime: ytree_parse*() allocates the whole tree; ytree_free() releases it. Nodes stay valid until then.
 */
#ifndef PLEXUS_HUB_YTREE_H
#define PLEXUS_HUB_YTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <plexus/memory.h>     /* Error */

typedef enum { YNODE_SCALAR, YNODE_SEQ, YNODE_MAP } ynode_kind;

typedef struct ynode ynode;
typedef struct ypair { char *key; unsigned key_line; ynode *value; } ypair;

struct ynode {
    ynode_kind kind;
    unsigned line;          /* 1-based line in the file where the node starts */
    const char *origin;     /* NULL: the file; else the text of the --set that produced it */
    char *scalar;           /* YNODE_SCALAR */
    bool quoted;            /* scalar was quoted in the source */
    ynode **items;          /* YNODE_SEQ */
    size_t n_items;
    ypair *pairs;           /* YNODE_MAP, in document order */
    size_t n_pairs;
};

/* Parse one YAML document. On a syntax error returns NULL, with the line in *@line and what is wrong in *@errp. */
ynode *ytree_parse(const char *data, size_t len, const char *origin, unsigned *line, Error **errp);
void ytree_free(ynode *n);

ynode *ytree_map_get(const ynode *map, const char *key);
const ypair *ytree_map_pair(const ynode *map, const char *key);

/*
 * Apply an override: @path is dot-separated; a component selects a mapping key, or in a sequence either a
 * decimal index or the entry whose `name` is the component. Missing mapping keys are created. @value is parsed
 * as a YAML flow value (so `[10, 11]` is a sequence); text that does not parse is kept as a string.
 * Returns 0, or -EINVAL with *@errp set.
 */
int ytree_set(ynode *root, const char *path, const char *value, const char *origin, Error **errp);

#endif
