// Path resolution that cannot leave a root: openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from a root fd, so
// absolute symlinks and ".." are resolved as if the root were "/". No "is a directory" state is ever cached.
#pragma once

#include <sys/types.h>

#include <string>

#include "common.h"

namespace carrier {

// openat2 confined to `rootfd`; returns the fd or -errno. Retries EAGAIN (a concurrent rename elsewhere).
int open_in_root(int rootfd, const std::string& path, int flags, mode_t mode = 0);

// Opens `dir` itself as a root directory fd (O_PATH is not enough for fchmod; callers pick flags).
Fd open_root(const std::string& dir);

// Removes everything inside the directory `dirfd` (which stays), never following symlinks, making
// unwritable directories writable first (rootless extraction can leave 0555 dirs).
void empty_directory(int dirfd, const std::string& shown_path);

}  // namespace carrier
