/* Firmware loaders: ELF (PT_LOAD segments, entry point) and raw images at an address. */
#define _GNU_SOURCE
#include "machine.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int add_range(hub_load_result *res, uint64_t start, uint64_t end)
{
    hub_load_range *n = reallocarray(res->ranges, res->n_ranges + 1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    res->ranges = n;
    res->ranges[res->n_ranges++] = (hub_load_range){ start, end };
    return 0;
}

void hub_load_result_clear(hub_load_result *res)
{
    free(res->ranges);
    memset(res, 0, sizeof(*res));
}

static int errf(Error **errp, int r, const char *fmt, const char *a, const char *b)
{
    error_setg(errp, fmt, a, b);
    return r;
}

int hub_load_elf(const char *path, hub_load_write_fn *write, void *opaque, hub_load_result *res, Error **errp)
{
    int r = 0;
    Elf *e = NULL;
    uint8_t *zeros = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errf(errp, -errno, "%s: cannot open: %s", path, strerror(errno));
    if (elf_version(EV_CURRENT) == EV_NONE) {
        r = errf(errp, -EINVAL, "%s: libelf: %s", path, elf_errmsg(-1));
        goto out;
    }
    e = elf_begin(fd, ELF_C_READ, NULL);
    if (!e || elf_kind(e) != ELF_K_ELF) {
        r = errf(errp, -ENOEXEC, "%s: not an ELF file%s", path, "");
        goto out;
    }
    GElf_Ehdr eh;
    if (!gelf_getehdr(e, &eh)) {
        r = errf(errp, -ENOEXEC, "%s: bad ELF header: %s", path, elf_errmsg(-1));
        goto out;
    }
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_RISCV) {
        r = errf(errp, -ENOEXEC, "%s: expected a 64-bit RISC-V ELF (ELFCLASS64, EM_RISCV)%s", path, "");
        goto out;
    }
    if (eh.e_type != ET_EXEC) {
        r = errf(errp, -ENOEXEC, "%s: expected an executable ELF (ET_EXEC), not a relocatable or shared object%s",
                 path, "");
        goto out;
    }
    size_t phnum;
    if (elf_getphdrnum(e, &phnum) < 0) {
        r = errf(errp, -ENOEXEC, "%s: bad program headers: %s", path, elf_errmsg(-1));
        goto out;
    }
    struct stat st;
    fstat(fd, &st);
    size_t nload = 0;
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(e, (int)i, &ph)) {
            r = errf(errp, -ENOEXEC, "%s: bad program header: %s", path, elf_errmsg(-1));
            goto out;
        }
        if (ph.p_type != PT_LOAD || !ph.p_memsz)
            continue;
        if (ph.p_filesz > ph.p_memsz || ph.p_offset > (uint64_t)st.st_size ||
            ph.p_filesz > (uint64_t)st.st_size - ph.p_offset || ph.p_paddr + ph.p_memsz < ph.p_paddr) {
            r = errf(errp, -ENOEXEC, "%s: a PT_LOAD segment lies outside the file or wraps%s", path, "");
            goto out;
        }
        /* Physical addresses: the hart starts with translation off. */
        uint64_t at = ph.p_paddr;
        size_t off = 0;
        uint8_t buf[65536];
        while (off < ph.p_filesz) {
            size_t chunk = ph.p_filesz - off < sizeof(buf) ? ph.p_filesz - off : sizeof(buf);
            ssize_t got = pread(fd, buf, chunk, (off_t)(ph.p_offset + off));
            if (got <= 0) {
                r = errf(errp, -EIO, "%s: read error%s", path, "");
                goto out;
            }
            if ((r = write(opaque, at + off, buf, (size_t)got)) < 0) {
                char a[64];
                snprintf(a, sizeof(a), "0x%llx", (unsigned long long)(at + off));
                r = errf(errp, r, "%s: segment at %s is not inside RAM", path, a);
                goto out;
            }
            off += (size_t)got;
        }
        if (ph.p_memsz > ph.p_filesz) {
            size_t left = ph.p_memsz - ph.p_filesz;
            if (!zeros)
                zeros = calloc(1, 65536);
            for (uint64_t a = at + ph.p_filesz; left;) {
                size_t chunk = left < 65536 ? left : 65536;
                if ((r = write(opaque, a, zeros, chunk)) < 0) {
                    char s[64];
                    snprintf(s, sizeof(s), "0x%llx", (unsigned long long)a);
                    r = errf(errp, r, "%s: segment (.bss) at %s is not inside RAM", path, s);
                    goto out;
                }
                a += chunk;
                left -= chunk;
            }
        }
        if ((r = add_range(res, at, at + ph.p_memsz)) < 0)
            goto out;
        nload++;
    }
    if (!nload) {
        r = errf(errp, -ENOEXEC, "%s: no PT_LOAD segment to load%s", path, "");
        goto out;
    }
    res->entry = eh.e_entry;
    res->has_entry = true;
out:
    free(zeros);
    if (e)
        elf_end(e);
    close(fd);
    return r;
}

int hub_load_raw(const char *path, uint64_t addr, hub_load_write_fn *write, void *opaque, hub_load_result *res,
                 Error **errp)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errf(errp, -errno, "%s: cannot open: %s", path, strerror(errno));
    uint8_t buf[65536];
    uint64_t off = 0;
    int r = 0;
    for (;;) {
        ssize_t got = read(fd, buf, sizeof(buf));
        if (got < 0) {
            r = errf(errp, -errno, "%s: read error: %s", path, strerror(errno));
            break;
        }
        if (!got)
            break;
        if ((r = write(opaque, addr + off, buf, (size_t)got)) < 0) {
            char a[64];
            snprintf(a, sizeof(a), "0x%llx", (unsigned long long)(addr + off));
            r = errf(errp, r, "%s: does not fit in RAM (byte at %s is outside)", path, a);
            break;
        }
        off += (uint64_t)got;
    }
    close(fd);
    if (r == 0 && !off)
        r = errf(errp, -ENOEXEC, "%s: the image is empty%s", path, "");
    if (r == 0)
        r = add_range(res, addr, addr + off);
    return r;
}

/*
 * The RISC-V Linux Image header (Documentation/arch/riscv/boot-image-header.rst), little endian:
 * code0 (4), code1 (4), text_offset (8) @8, image_size (8) @16, flags (8) @24, version (4) @32, res1 (4),
 * res2 (8), magic "RISCV\0\0\0" (8) @48 (deprecated), magic2 "RSC\x05" (4) @56, res3 (4).
 */
#define IMAGE_HEADER_SIZE 64

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int hub_image_probe(const char *path, hub_image_info *info, Error **errp)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errf(errp, -errno, "%s: cannot open: %s", path, strerror(errno));
    uint8_t h[IMAGE_HEADER_SIZE];
    struct stat st;
    ssize_t got = fstat(fd, &st) == 0 ? pread(fd, h, sizeof(h), 0) : -1;
    int e = errno;
    close(fd);
    if (got < 0)
        return errf(errp, -e, "%s: read error: %s", path, strerror(e));
    if (got >= 2 && h[0] == 0x1f && h[1] == 0x8b)
        return errf(errp, -ENOEXEC, "%s: a gzip-compressed file; decompress it first (gunzip)%s", path, "");
    if (got < IMAGE_HEADER_SIZE)
        return errf(errp, -ENOEXEC, "%s: too short for a RISC-V Linux Image header (64 bytes)%s", path, "");
    if (memcmp(h + 56, "RSC\x05", 4) && memcmp(h + 48, "RISCV\0\0\0", 8))
        return errf(errp, -ENOEXEC, "%s: neither an ELF nor a RISC-V Linux Image (no 'RSC\\x05' magic at offset "
                    "56)%s", path, "");
    hub_image_info in = {
        .text_offset = le64(h + 8),
        .image_size = le64(h + 16),
        .flags = le64(h + 24),
        .version = (uint32_t)le64(h + 32),
        .file_size = (uint64_t)st.st_size,
    };
    char detail[160];
    if (in.flags & 1) {
        snprintf(detail, sizeof(detail), "a big-endian kernel (flags 0x%llx); this hart is little endian",
                 (unsigned long long)in.flags);
    } else if (in.text_offset & 0xfff) {
        snprintf(detail, sizeof(detail), "bad header: text_offset 0x%llx is not 4 KiB aligned",
                 (unsigned long long)in.text_offset);
    } else if (in.image_size < in.file_size) {
        snprintf(detail, sizeof(detail), "bad header: image_size %llu is smaller than the file (%llu bytes)",
                 (unsigned long long)in.image_size, (unsigned long long)in.file_size);
    } else if (in.image_size > (1ULL << 40) || in.text_offset > (1ULL << 40)) {
        snprintf(detail, sizeof(detail), "bad header: text_offset 0x%llx, image_size 0x%llx",
                 (unsigned long long)in.text_offset, (unsigned long long)in.image_size);
    } else {
        *info = in;
        return 0;
    }
    return errf(errp, -ENOEXEC, "%s: RISC-V Linux Image: %s", path, detail);
}
