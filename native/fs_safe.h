// Path resolution that cannot leave a root: openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from a root fd, so
// absolute symlinks and ".." are resolved as if the root were "/". No "is a directory" state is ever cached.
//
// Where openat2 is unavailable (kernels before 5.6, old qemu-user, seccomp profiles that deny it) the same
// resolution is done in userspace, one component at a time with openat(O_NOFOLLOW) from the root fd: symlinks are
// read and expanded by us (absolute ones restart at the root, at most 40 per path as the kernel's MAXSYMLINKS), ".."
// never goes above the root, and a symlink on procfs (where every magic link lives) is refused with ELOOP.
// The choice is made once per process; see path_resolver().
#pragma once

#include <sys/types.h>

#include <string>

#include "common.h"

namespace carrier {

// openat2 confined to `rootfd`; returns the fd or -errno. Retries EAGAIN (a concurrent rename elsewhere).
int open_in_root(int rootfd, const std::string& path, int flags, mode_t mode = 0);

// openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV) from `dirfd`: no
// absolute path, no ".." above `dirfd`, no symlink (a final one only with O_PATH|O_NOFOLLOW), no mount crossing
// (the fallback compares st_dev). Returns the fd or -errno.
int open_beneath(int dirfd, const std::string& path, int flags);

// "openat2" or "walk": how this process resolves paths, decided at the first call (the addon decides at load, on
// the main thread). "walk" when a probe openat2 of "/" fails with ENOSYS, or with EPERM (which that probe cannot
// get from the kernel itself: only from a seccomp filter whose default errno is EPERM, as Docker's before 20.10),
// or when the environment has CARRIER_NO_OPENAT2=1 (a test switch, read once). EPERM from a real openat2 call is a
// real answer and is returned; ENOSYS from one (a filter installed after the probe) switches to the walk.
const char* path_resolver();

// The userspace resolutions themselves, whatever path_resolver() says: for the native tests, which compare them
// with openat2 on the same trees. Same contracts as open_in_root / open_beneath (no EAGAIN retry).
int open_in_root_walk(int rootfd, const std::string& path, int flags, mode_t mode = 0);
int open_beneath_walk(int dirfd, const std::string& path, int flags);

// Opens `dir` itself as a root directory fd (O_PATH is not enough for fchmod; callers pick flags).
Fd open_root(const std::string& dir);

// Removes everything inside the directory `dirfd` (which stays), never following symlinks, making
// unwritable directories writable first (rootless extraction can leave 0555 dirs).
void empty_directory(int dirfd, const std::string& shown_path);

}  // namespace carrier
