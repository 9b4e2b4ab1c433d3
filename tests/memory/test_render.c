/*
 * Rendering against a reference model: random trees of containers, leaves and aliases with random
 * priorities, addresses (sticking out of their containers too), sizes and enable flags, then random
 * mutations. After every change, what address_space_translate() finds at each boundary address (and at
 * random ones) must equal what a direct walk of the tree says is visible there. Aliases are mapped at the
 * top level only, so no alias can reach a region containing it (cycles have their own test).
 */
#include "helpers.h"

#include <stdlib.h>

#define NODES 48
#define ROUNDS 40

typedef struct Node {
    MemoryRegion mr;
    int kind;            /* 0 container, 1 leaf (I/O), 2 alias */
    int parent;          /* index, -1 = root */
    int target;          /* alias target */
    hwaddr addr, alias_offset;
    uint64_t size;
    int priority;
    unsigned seq;        /* insertion order into its parent */
    bool enabled, mapped;
} Node;

static Node n[NODES];
static MemoryRegion root;
static AddressSpace as;
static unsigned seq_counter;
static unsigned long hits, misses;
static uint64_t rng_state;

static uint64_t rnd(uint64_t m)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (rng_state >> 33) % m;
}

static const MemoryRegionOps leaf_ops = { .read = dev_read, .endianness = DEVICE_LITTLE_ENDIAN };

/* The reference: the leaf visible at @addr inside node @i placed at @base (or -1), and the offset in it. */
static int visible(int i, __int128 base, __int128 addr, hwaddr *off);

static int visible_children(int parent, __int128 base, __int128 addr, hwaddr *off)
{
    /* children by descending priority, newest first among equals */
    int order[NODES], k = 0;
    for (int c = 0; c < NODES; c++)
        if (n[c].mapped && n[c].parent == parent)
            order[k++] = c;
    for (int a = 1; a < k; a++)
        for (int b = a; b > 0; b--) {
            Node *x = &n[order[b - 1]], *y = &n[order[b]];
            if (y->priority > x->priority || (y->priority == x->priority && y->seq > x->seq)) {
                int t = order[b - 1];
                order[b - 1] = order[b];
                order[b] = t;
            }
        }
    for (int a = 0; a < k; a++) {
        int v = visible(order[a], base + n[order[a]].addr, addr, off);
        if (v >= 0)
            return v;
    }
    return -1;
}

static int visible(int i, __int128 base, __int128 addr, hwaddr *off)
{
    Node *x = &n[i];
    if (!x->enabled || addr < base || addr >= base + (__int128)x->size)
        return -1;
    if (x->kind == 2)
        return visible(x->target, base - (__int128)x->alias_offset, addr, off);
    int v = visible_children(i, base, addr, off);
    if (v >= 0)
        return v;
    if (x->kind == 1) {
        *off = (hwaddr)(addr - base);
        return i;
    }
    return -1;
}

static int visible_root(hwaddr addr, hwaddr *off)
{
    return visible_children(-1, 0, addr, off);
}

static MemoryRegion *parent_mr(int p)
{
    return p < 0 ? &root : &n[p].mr;
}

static void map(int i)
{
    n[i].seq = ++seq_counter;
    n[i].mapped = true;
    memory_region_add_subregion_overlap(parent_mr(n[i].parent), n[i].addr, &n[i].mr, n[i].priority);
}

static void check_all(const char *when)
{
    hwaddr probes[NODES * 8 + 64];
    unsigned np = 0;
    for (int i = 0; i < NODES; i++) {
        /* absolute start of each node along its container chain */
        __int128 base = 0;
        for (int j = i; j >= 0; j = n[j].parent)
            base += n[j].addr;
        hwaddr b = (hwaddr)base, e = (hwaddr)(base + n[i].size);
        probes[np++] = b;
        probes[np++] = b - 1;
        probes[np++] = e;
        probes[np++] = e - 1;
        probes[np++] = b + n[i].size / 2;
        if (n[i].kind == 2) {
            probes[np++] = b + 1;
        }
    }
    while (np < sizeof(probes) / sizeof(probes[0]))
        probes[np++] = rnd(0x14000);
    for (unsigned p = 0; p < np; p++) {
        hwaddr want_off = 0, got_off = 0, len = 1;
        int want = visible_root(probes[p], &want_off);
        memory_rcu_read_lock();
        MemoryRegion *got = address_space_translate(&as, probes[p], &got_off, &len, false);
        memory_rcu_read_unlock();
        cr_assert_eq(got, want < 0 ? NULL : &n[want].mr, "%s: at 0x%lx expected %s got %s", when,
                     (unsigned long)probes[p], want < 0 ? "nothing" : "node", got ? memory_region_name(got) : "nothing");
        if (want < 0)
            misses++;
        else
            hits++;
        if (want >= 0)
            cr_assert_eq(got_off, want_off, "%s: at 0x%lx offset 0x%lx, expected 0x%lx", when,
                         (unsigned long)probes[p], (unsigned long)got_off, (unsigned long)want_off);
    }
}

/* A random node that may contain children without creating a cycle: containers only, or the root. */
static int random_parent(int self)
{
    for (int tries = 0; tries < 8; tries++) {
        int p = (int)rnd(NODES + 4) - 4;
        if (p < 0)
            return -1;
        if (n[p].kind != 0 || p == self)
            continue;
        bool cycle = false;
        for (int j = p; j >= 0; j = n[j].parent)
            cycle |= j == self;
        if (!cycle)
            return p;
    }
    return -1;
}

static void build(uint64_t seed)
{
    rng_state = seed;
    seq_counter = 0;
    memset(n, 0, sizeof(n));
    for (int i = 0; i < NODES; i++)
        n[i].parent = -1;
    memory_region_init(&root, NULL, "root", UINT64_MAX);
    address_space_init(&as, &root, "render");
    memory_region_transaction_begin();
    for (int i = 0; i < NODES; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%d", i);
        Node *x = &n[i];
        x->kind = i < 8 ? 0 : (int)rnd(3);
        x->size = (1 + rnd(16)) * 0x400;
        x->priority = (int)rnd(5) - 2;
        x->enabled = rnd(8) != 0;
        if (x->kind == 0) {
            memory_region_init(&x->mr, NULL, name, x->size);
        } else if (x->kind == 1) {
            memory_region_init_io(&x->mr, NULL, &leaf_ops, NULL, name, x->size);
        } else {
            x->target = (int)rnd((unsigned)i); /* an earlier node: no alias cycles */
            x->alias_offset = rnd(4) * 0x400;
            memory_region_init_alias(&x->mr, NULL, name, &n[x->target].mr, x->alias_offset, x->size);
        }
        memory_region_set_enabled(&x->mr, x->enabled);
    }
    for (int i = 0; i < NODES; i++) {
        if (rnd(6) == 0)
            continue; /* unmapped (maybe aliased) */
        n[i].parent = n[i].kind == 2 ? -1 : random_parent(i);
        n[i].addr = rnd(n[i].parent < 0 ? 0x30 : 8) * 0x400;
        map(i);
    }
    memory_region_transaction_commit();
}

static void teardown_all(void)
{
    address_space_destroy(&as);
    memory_region_transaction_begin();
    for (int i = NODES - 1; i >= 0; i--)
        if (n[i].mapped)
            memory_region_del_subregion(parent_mr(n[i].parent), &n[i].mr);
    memory_region_transaction_commit();
    for (int i = NODES - 1; i >= 0; i--) /* aliases point at earlier nodes: destroy them first */
        memory_region_destroy(&n[i].mr);
    memory_region_destroy(&root);
}

static void mutate(void)
{
    int i = (int)rnd(NODES);
    Node *x = &n[i];
    switch (rnd(6)) {
    case 0:
        x->enabled = !x->enabled;
        memory_region_set_enabled(&x->mr, x->enabled);
        break;
    case 1:
        if (x->mapped) {
            x->addr = rnd(x->parent < 0 ? 0x30 : 8) * 0x400;
            memory_region_set_address(&x->mr, x->addr);
        }
        break;
    case 2:
        if (x->kind == 2) {
            x->alias_offset = rnd(4) * 0x400;
            memory_region_set_alias_offset(&x->mr, x->alias_offset);
        }
        break;
    case 3:
        x->size = (1 + rnd(16)) * 0x400;
        memory_region_set_size(&x->mr, x->size);
        break;
    case 4:
        if (x->mapped) {
            memory_region_del_subregion(parent_mr(x->parent), &x->mr);
            x->mapped = false;
        } else {
            x->parent = x->kind == 2 ? -1 : random_parent(i);
            x->addr = rnd(x->parent < 0 ? 0x30 : 8) * 0x400;
            x->priority = (int)rnd(5) - 2;
            map(i);
        }
        break;
    default: {
        /* several changes in one transaction */
        memory_region_transaction_begin();
        for (int k = 0; k < 3; k++) {
            int j = (int)rnd(NODES);
            n[j].enabled = !n[j].enabled;
            memory_region_set_enabled(&n[j].mr, n[j].enabled);
        }
        memory_region_transaction_commit();
    }
    }
}

Test(render, random_trees_match_the_reference_model)
{
    for (uint64_t seed = 1; seed <= 25; seed++) {
        build(seed * 7919);
        char when[64];
        snprintf(when, sizeof(when), "seed %lu initial", (unsigned long)seed);
        check_all(when);
        for (int r = 0; r < ROUNDS; r++) {
            mutate();
            snprintf(when, sizeof(when), "seed %lu round %d", (unsigned long)seed, r);
            check_all(when);
        }
        teardown_all();
    }
    cr_log_info("%lu probes found a region, %lu found nothing", hits, misses);
    cr_assert_gt(hits, (hits + misses) / 4, "the random maps are too empty to test anything");
}

Test(render, alias_cycle_is_cut)
{
    MemoryRegion top, box, loop, leaf;
    AddressSpace cas;
    memory_region_init(&top, NULL, "top", UINT64_MAX);
    memory_region_init(&box, NULL, "box", 0x4000);
    memory_region_init_io(&leaf, NULL, &leaf_ops, NULL, "leaf", 0x1000);
    memory_region_init_alias(&loop, NULL, "loop", &box, 0, 0x2000);
    memory_region_add_subregion(&box, 0x0, &leaf);
    memory_region_add_subregion(&box, 0x2000, &loop); /* box contains an alias of itself */
    memory_region_add_subregion(&top, 0x10000, &box);
    address_space_init(&cas, &top, "cycle");
    hwaddr off, len = 1;
    memory_rcu_read_lock();
    cr_assert_eq(address_space_translate(&cas, 0x10000, &off, &len, false), &leaf);
    len = 1;
    /* the alias leads back into box, which is being rendered: the cycle is cut there, nothing shows */
    cr_assert_null(address_space_translate(&cas, 0x12000, &off, &len, false));
    memory_rcu_read_unlock();
    address_space_destroy(&cas);
    memory_region_del_subregion(&top, &box);
    memory_region_del_subregion(&box, &loop);
    memory_region_del_subregion(&box, &leaf);
    memory_region_destroy(&loop);
    memory_region_destroy(&leaf);
    memory_region_destroy(&box);
    memory_region_destroy(&top);
}
