/*
 * The handshake's pieces that both sides run (docs/protocol.md, "Handshake"): Hello and its version check, the
 * descriptor socket that carries SCM_RIGHTS (RAM and shadow memfds, the ring), the attach exchange of a device
 * the hub did not start, and the move of a channel onto the shared-memory ring. The hub and the SDK each drive
 * the sequence (Hello + Declare, Hello + Config, Ready); what goes over the wire is built and checked here.
 *
 * Every int function returns 0 or a negative errno; on failure nothing is left open and out-parameters are
 * untouched, and where an @err buffer is given it says why.
 */
#ifndef PLEXUS_HANDSHAKE_H
#define PLEXUS_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/chan.h"
#include "plexus/wire.h"

/* ---- Hello ------------------------------------------------------------------------------------------------ */

/* A Hello of this protocol version offering @caps (PLX_CAP_* bits), with @name and @model (may be NULL). */
void plx_hs_hello_init(Plx__Hello *h, uint32_t caps, const char *name, const char *model);

/* The peer's Hello @h: 0 and the minor both sides use in *@minor, or -EPROTONOSUPPORT (another major; @err
 * says which). */
int plx_hs_hello_check(const Plx__Hello *h, uint32_t *minor, char *err, size_t err_len);

/* ---- descriptors over the handshake's UNIX socket ------------------------------------------------------- */

/* Send @n (1..PLX_MAX_PASSED_FDS) descriptors in one SCM_RIGHTS message. */
int plx_hs_send_fds(int sock, const int *fds, unsigned n);
/* Receive exactly @n descriptors (CLOEXEC) from one message, waiting up to @timeout_ms (-1: forever). -EPROTO
 * if the message carries another number (the ones it carried are closed), -ETIMEDOUT, -EPIPE (hung up). */
int plx_hs_recv_fds(int sock, int *fds, unsigned n, int timeout_ms);

/* ---- the shared-memory ring ------------------------------------------------------------------------------ */

/* Hub: a new ring (plx_chan_ring_create) whose descriptors go to the device over @sock. NULL and errno. */
plx_chan *plx_hs_ring_offer(int sock, unsigned n_slots, uint64_t spin_ns);
/* Device: the ring whose descriptors the hub sent over @sock (after a Config with ring = true). NULL with why in
 * @err. */
plx_chan *plx_hs_ring_accept(int sock, int timeout_ms, char *err, size_t err_len);

/* ---- attach: a device the hub did not start asks for its channel ---------------------------------------- */

/*
 * Device: connect to the hub's attach socket @path and ask for the channel of the configured device @name,
 * presenting its key (docs/protocol.md, "Attach socket"): @key (PLX_ATTACH_KEY_LEN hex digits), else read from
 * @key_file at each try (the hub writes it when it adds the device). Retries ("retry": the hub is setting up
 * another device first; or no key file yet) until @timeout_ms passed. On success the endpoint is in @endpoint and
 * *@sock is the connection, which stays open as the descriptor socket. -ECONNREFUSED (the hub said no: its
 * words in @err), -ETIMEDOUT, -ENAMETOOLONG, -EINVAL (a malformed key).
 */
int plx_hs_attach(const char *path, const char *name, const char *key, const char *key_file, int timeout_ms,
                  char *endpoint, size_t ep_len, int *sock, char *err, size_t err_len);

/* Hub: split a request "attach NAME KEY" (@len bytes of @req) into @name and @key. -EPROTO if it is not one. */
int plx_hs_attach_parse(const char *req, size_t len, char *name, size_t name_len, char *key, size_t key_len);
/* Hub: answer it: the channel's @endpoint, or NULL to say "retry" (another device's turn). Never waits. */
int plx_hs_attach_answer(int conn, const char *endpoint);

#endif
