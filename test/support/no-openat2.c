// Runs a program with openat2(2) denied by a seccomp filter, as a container runtime's profile, an old kernel or an
// old qemu-user would deny it: `no-openat2 ENOSYS|EPERM PROGRAM ARGS...`. Raw classic BPF, no libseccomp: the
// filter checks the architecture first (a foreign ABI is killed rather than let through unfiltered), answers
// openat2 with the errno and allows every other call. It checks that the filter took before it execs PROGRAM.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define FILTER_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define FILTER_ARCH AUDIT_ARCH_AARCH64
#else
#error "no-openat2 knows x86-64 and aarch64"
#endif

#ifndef SYS_openat2
#define SYS_openat2 437 /* the same number in both tables */
#endif

int main(int argc, char** argv) {
  int err = argc >= 3 && strcmp(argv[1], "ENOSYS") == 0 ? ENOSYS : argc >= 3 && strcmp(argv[1], "EPERM") == 0 ? EPERM : 0;
  if (!err) {
    fprintf(stderr, "usage: no-openat2 ENOSYS|EPERM PROGRAM ARGS...\n");
    return 2;
  }
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FILTER_ARCH, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#if defined(__x86_64__)
      // x32 calls share x86-64's arch value with bit 30 set in the number: kill them too.
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
#endif
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {(unsigned short)(sizeof filter / sizeof filter[0]), filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    perror("no-openat2: prctl(PR_SET_NO_NEW_PRIVS)");
    return 1;
  }
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    perror("no-openat2: prctl(PR_SET_SECCOMP)");
    return 1;
  }
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = O_PATH | O_CLOEXEC;
  long fd = syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how);
  if (fd >= 0 || errno != err) {
    fprintf(stderr, "no-openat2: the filter did not take (openat2 gave %ld, errno %d)\n", fd, errno);
    return 3;
  }
  execvp(argv[2], argv + 2);
  perror("no-openat2: execvp");
  return 127;
}
