/* Listening sockets for the debugger and the monitor. */
#ifndef PLEXUS_HUB_DEBUG_LISTEN_H
#define PLEXUS_HUB_DEBUG_LISTEN_H

#include <stdbool.h>

#include <plexus/memory.h>

/*
 * A non-blocking, close-on-exec listening stream socket on @spec: "unix:PATH" (an old socket file there is
 * replaced) or, when @tcp_ok, "tcp::PORT" (127.0.0.1) or "tcp:HOST:PORT"; PORT 0 picks a free one. Returns
 * the fd with *@where set to where it listens ("unix:PATH", "tcp:ADDR:PORT"; malloc'd), or -errno with @errp
 * set (the message starts with @what).
 */
int hub_listen(const char *what, const char *spec, bool tcp_ok, char **where, Error **errp);

#endif
