#ifndef SPOOL_SYS_H
#define SPOOL_SYS_H

/// syncfs(2): flush every dirty file of the file system holding `fd`.
/// (Swift's Glibc module hides it behind _GNU_SOURCE.)
int spool_syncfs(int fd);

#endif
