/* Private to the SDK: the device-process sandbox (seccomp allowlist). */
#ifndef PLEXUS_SDK_SANDBOX_H
#define PLEXUS_SDK_SANDBOX_H

#include <stddef.h>

/*
 * Confine this process (every thread) to the system calls of @policy ("", "default" or "log") plus @allow. A
 * call outside them prints "sandbox: denied system call NAME" to stderr, sends the same text on @report_fd
 * (if >= 0) and ends the process with status 128 + SIGSYS; under "log" it is allowed and the kernel logs it. Returns 0, or a negative errno with a reason in
 * @err (unknown policy or system-call name, or the kernel refused the filter).
 */
/* Report a system call denied by a filter already on (the hub's jail) as plx_sandbox_apply() does: on @report_fd
 * and stderr, then exit with status 128 + SIGSYS. */
void plx_sandbox_report(int report_fd);

int plx_sandbox_apply(const char *policy, char *const *allow, size_t n_allow, int report_fd, char *err,
                      size_t errlen);

#endif
