/*
 * For the YAML configuration targets: the loaders take a path, so each
 * input goes into a memfd and is loaded as /proc/self/fd/N (no file is
 * left behind, nothing touches the disk).
 *
 * The data node resolves its listen address with getaddrinfo(3). A fuzzer
 * would make that a DNS query per input (slow, and network access), so
 * this file interposes getaddrinfo with AI_NUMERICHOST added: numeric
 * addresses are parsed exactly as before, names fail as unresolvable.
 * (The sanitizer runtime's own getaddrinfo interceptor is a weak symbol;
 * this definition takes its place and calls the C library's.)
 */

#ifndef PLINTH_FUZZ_CONFIG_SHIM_H
#define PLINTH_FUZZ_CONFIG_SHIM_H

#define _GNU_SOURCE

#include <dlfcn.h>
#include <netdb.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"


typedef int (*fuzz_getaddrinfo_pt)(const char *node, const char *service,
    const struct addrinfo *hints, struct addrinfo **res);


int
getaddrinfo(const char *node, const char *service,
    const struct addrinfo *hints, struct addrinfo **res)
{
    struct addrinfo             h;
    static fuzz_getaddrinfo_pt  real;

    if (real == NULL) {
        real = (fuzz_getaddrinfo_pt) dlsym(RTLD_NEXT, "getaddrinfo");
        FUZZ_ASSERT(real != NULL);
    }

    if (hints) {
        h = *hints;
    } else {
        memset(&h, 0, sizeof(h));
        h.ai_family = AF_UNSPEC;
    }

    h.ai_flags |= AI_NUMERICHOST;

    return real(node, service, &h, res);
}


/* The input as a file: returns its path (valid until the next call). */
static const char *
fuzz_config_file(const uint8_t *data, size_t size)
{
    static int   fd = -1;
    static char  path[64];

    if (fd < 0) {
        fd = memfd_create("plinth-fuzz-config", MFD_CLOEXEC);
        FUZZ_ASSERT(fd >= 0);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }

    FUZZ_ASSERT(ftruncate(fd, 0) == 0);
    FUZZ_ASSERT(size == 0 || pwrite(fd, data, size, 0) == (ssize_t) size);

    return path;
}

#endif /* PLINTH_FUZZ_CONFIG_SHIM_H */
