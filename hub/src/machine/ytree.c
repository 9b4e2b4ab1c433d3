#define _GNU_SOURCE
#include "ytree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static ynode *node_new(ynode_kind kind, unsigned line, const char *origin)
{
    ynode *n = calloc(1, sizeof(*n));
    if (!n)
        abort();
    n->kind = kind;
    n->line = line;
    n->origin = origin;
    return n;
}

void ytree_free(ynode *n)
{
    if (!n)
        return;
    free(n->scalar);
    for (size_t i = 0; i < n->n_items; i++)
        ytree_free(n->items[i]);
    free(n->items);
    for (size_t i = 0; i < n->n_pairs; i++) {
        free(n->pairs[i].key);
        ytree_free(n->pairs[i].value);
    }
    free(n->pairs);
    free(n);
}

static void seq_push(ynode *seq, ynode *item)
{
    seq->items = reallocarray(seq->items, seq->n_items + 1, sizeof(*seq->items));
    if (!seq->items)
        abort();
    seq->items[seq->n_items++] = item;
}

static ypair *map_push(ynode *map, char *key, unsigned key_line)
{
    map->pairs = reallocarray(map->pairs, map->n_pairs + 1, sizeof(*map->pairs));
    if (!map->pairs)
        abort();
    ypair *p = &map->pairs[map->n_pairs++];
    *p = (ypair){ .key = key, .key_line = key_line };
    return p;
}

typedef struct parse_ctx {
    yaml_parser_t parser;
    const char *origin;
    unsigned err_line;
    char *err;
} parse_ctx;

static int next_event(parse_ctx *c, yaml_event_t *ev)
{
    if (yaml_parser_parse(&c->parser, ev))
        return 0;
    c->err_line = (unsigned)c->parser.problem_mark.line + 1;
    if (asprintf(&c->err, "YAML syntax error: %s%s%s", c->parser.problem ? c->parser.problem : "unknown problem",
                 c->parser.context ? " " : "", c->parser.context ? c->parser.context : "") < 0)
        abort();
    return -EINVAL;
}

static int fail(parse_ctx *c, unsigned line, const char *msg)
{
    c->err_line = line;
    c->err = strdup(msg);
    return -EINVAL;
}

/* Build the node that starts with @ev (consumed). */
static int parse_node(parse_ctx *c, yaml_event_t *ev, ynode **out)
{
    unsigned line = (unsigned)ev->start_mark.line + 1;
    int r = 0;
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        ynode *n = node_new(YNODE_SCALAR, line, c->origin);
        n->scalar = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
        n->quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                    ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        yaml_event_delete(ev);
        *out = n;
        return 0;
    }
    case YAML_SEQUENCE_START_EVENT: {
        yaml_event_delete(ev);
        ynode *n = node_new(YNODE_SEQ, line, c->origin);
        for (;;) {
            yaml_event_t e;
            if ((r = next_event(c, &e)) < 0)
                break;
            if (e.type == YAML_SEQUENCE_END_EVENT) {
                yaml_event_delete(&e);
                *out = n;
                return 0;
            }
            ynode *item = NULL;
            if ((r = parse_node(c, &e, &item)) < 0)
                break;
            seq_push(n, item);
        }
        ytree_free(n);
        return r;
    }
    case YAML_MAPPING_START_EVENT: {
        yaml_event_delete(ev);
        ynode *n = node_new(YNODE_MAP, line, c->origin);
        for (;;) {
            yaml_event_t e;
            if ((r = next_event(c, &e)) < 0)
                break;
            if (e.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&e);
                *out = n;
                return 0;
            }
            unsigned kline = (unsigned)e.start_mark.line + 1;
            if (e.type != YAML_SCALAR_EVENT) {
                yaml_event_delete(&e);
                r = fail(c, kline, "mapping keys must be plain strings");
                break;
            }
            char *key = strndup((const char *)e.data.scalar.value, e.data.scalar.length);
            yaml_event_delete(&e);
            if (ytree_map_get(n, key)) {
                char *m;
                if (asprintf(&m, "key '%s' appears twice in the same mapping", key) < 0)
                    abort();
                free(key);
                c->err_line = kline;
                c->err = m;
                r = -EINVAL;
                break;
            }
            ypair *p = map_push(n, key, kline);
            if ((r = next_event(c, &e)) < 0)
                break;
            if ((r = parse_node(c, &e, &p->value)) < 0)
                break;
        }
        ytree_free(n);
        return r;
    }
    case YAML_ALIAS_EVENT:
        yaml_event_delete(ev);
        return fail(c, line, "YAML aliases (*name) are not supported in machine descriptions");
    default:
        yaml_event_delete(ev);
        return fail(c, line, "unexpected YAML event");
    }
}

ynode *ytree_parse(const char *data, size_t len, const char *origin, unsigned *line, Error **errp)
{
    parse_ctx c = { .origin = origin };
    ynode *root = NULL;
    yaml_parser_initialize(&c.parser);
    yaml_parser_set_input_string(&c.parser, (const unsigned char *)data, len);
    yaml_event_t ev;
    int r = 0;
    /* STREAM_START, then DOCUMENT_START or STREAM_END (empty input) */
    if ((r = next_event(&c, &ev)) < 0)
        goto out;
    yaml_event_delete(&ev);
    if ((r = next_event(&c, &ev)) < 0)
        goto out;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        root = node_new(YNODE_MAP, 1, origin);
        goto out;
    }
    yaml_event_delete(&ev);
    if ((r = next_event(&c, &ev)) < 0)
        goto out;
    if ((r = parse_node(&c, &ev, &root)) < 0)
        goto out;
    if ((r = next_event(&c, &ev)) < 0)
        goto out;
    yaml_event_delete(&ev);     /* DOCUMENT_END */
    if ((r = next_event(&c, &ev)) < 0)
        goto out;
    if (ev.type != YAML_STREAM_END_EVENT)
        r = fail(&c, (unsigned)ev.start_mark.line + 1, "only one YAML document is allowed");
    yaml_event_delete(&ev);
out:
    yaml_parser_delete(&c.parser);
    if (r < 0) {
        ytree_free(root);
        *line = c.err_line;
        error_setg(errp, "%s", c.err ? c.err : "YAML syntax error");
        free(c.err);
        return NULL;
    }
    return root;
}

const ypair *ytree_map_pair(const ynode *map, const char *key)
{
    if (!map || map->kind != YNODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n_pairs; i++)
        if (!strcmp(map->pairs[i].key, key))
            return &map->pairs[i];
    return NULL;
}

ynode *ytree_map_get(const ynode *map, const char *key)
{
    const ypair *p = ytree_map_pair(map, key);
    return p ? p->value : NULL;
}

static int set_err(Error **errp, const char *fmt, const char *a, const char *b)
{
    error_setg(errp, fmt, a, b);
    return -EINVAL;
}

int ytree_set(ynode *root, const char *path, const char *value, const char *origin, Error **errp)
{
    unsigned vline;
    Error *verr = NULL;
    ynode *v = ytree_parse(value, strlen(value), origin, &vline, &verr);
    if (!v || v->kind == YNODE_MAP) {
        /* Text that is not a YAML value (or would read as a mapping, e.g. "a: b") stays a string. */
        error_free(verr);
        ytree_free(v);
        v = node_new(YNODE_SCALAR, 0, origin);
        v->scalar = strdup(value);
    } else if (v->kind == YNODE_SCALAR && !*value) {
        v->scalar[0] = 0;
    }
    v->line = 0;

    char *copy = strdup(path);
    ynode *cur = root;
    int r = 0;
    char *save = NULL;
    char *comp = strtok_r(copy, ".", &save);
    if (!comp) {
        r = set_err(errp, "empty key path%s%s", "", "");
        goto out;
    }
    while (comp) {
        char *next = strtok_r(NULL, ".", &save);
        if (cur->kind == YNODE_SEQ) {
            ynode *found = NULL;
            char *end;
            unsigned long idx = strtoul(comp, &end, 10);
            if (*comp && !*end) {
                if (idx < cur->n_items)
                    found = cur->items[idx];
            } else {
                for (size_t i = 0; i < cur->n_items && !found; i++) {
                    ynode *nm = ytree_map_get(cur->items[i], "name");
                    if (nm && nm->kind == YNODE_SCALAR && !strcmp(nm->scalar, comp))
                        found = cur->items[i];
                }
            }
            if (!found) {
                r = set_err(errp, "no list entry '%s' (use an index or an entry's name) in '%s'", comp, path);
                goto out;
            }
            if (!next && found->kind == YNODE_SCALAR) {     /* an entry of a list of plain values */
                for (size_t i = 0; i < cur->n_items; i++)
                    if (cur->items[i] == found)
                        cur->items[i] = v;
                ytree_free(found);
                v = NULL;
                break;
            }
            if (!next) {
                r = set_err(errp, "'%s' selects a whole list entry; name a key inside it ('%s.KEY')", path, path);
                goto out;
            }
            cur = found;
        } else if (cur->kind == YNODE_MAP) {
            ypair *p = (ypair *)ytree_map_pair(cur, comp);
            if (!next) {
                if (p) {
                    ytree_free(p->value);
                    p->value = v;
                } else {
                    p = map_push(cur, strdup(comp), 0);
                    p->value = v;
                }
                v = NULL;
                break;
            }
            if (!p) {
                p = map_push(cur, strdup(comp), 0);
                p->value = node_new(YNODE_MAP, 0, origin);
            }
            cur = p->value;
        } else {
            r = set_err(errp, "'%s' in '%s' goes inside a plain value", comp, path);
            goto out;
        }
        comp = next;
    }
out:
    ytree_free(v);
    free(copy);
    return r;
}
