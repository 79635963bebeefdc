"""The helper: ``python -I -S -c <this> <config fd> <report fd> <caller pid>``, started by the
caller (:mod:`ttclib.sandbox.process`) in a new session. Nothing of the sandbox runs in the
caller's process.

It reads its configuration (including the program) from the config pipe and writes JSON lines
to the report pipe. With namespaces it unshares them, builds the file system, and forks the
PID namespace's init (I); I mounts /proc, writes the program, forks the program's process (P)
and, when P exits, reports its status and how many processes P left, then exits, which kills
them. P sets the rlimits, drops to the sandbox uid and executes the interpreter (or, for the
tests' harness, runs it in this interpreter). Every mount happens in a fresh mount namespace,
checked first. It runs without ``site``: the standard library only.
"""

import ctypes
import json
import os
import signal
import sys
import time

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 1024, 2048, 4096, 16384
MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 1 << 18, 1 << 21, 1 << 24
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 1, 38, 22, 2
OPTION_FLAGS = {
    "ro": MS_RDONLY,
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
}

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.unshare.argtypes = [ctypes.c_int]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
STAGE = ["setup"]


def report(**message):
    os.write(REPORT_FD, (json.dumps(message) + "\n").encode())


def check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source, target, fstype, flags, data=None):
    def enc(s):
        return None if s is None else s.encode()

    check(
        libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)),
        f"mount {source or fstype or ''} on {target}",
    )


def prctl(option, value):
    check(libc.prctl(option, value, 0, 0, 0), f"prctl({option})")


def unescape(path):
    out, i = "", 0
    while i < len(path):
        if path[i] == "\\" and path[i + 1 : i + 4].isdigit():
            out += chr(int(path[i + 1 : i + 4], 8))
            i += 4
        else:
            out += path[i]
            i += 1
    return out


def mountinfo():
    """[(mount point, flags to keep on a bind remount)] in mount order."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            flags = 0
            for option in fields[5].split(","):
                flags |= OPTION_FLAGS.get(option, 0)
            if not flags & (MS_NOATIME | MS_RELATIME):
                flags |= MS_STRICTATIME
            mounts.append((unescape(fields[4]), flags))
    return mounts


def under(path, top):
    return path == top or path.startswith(top.rstrip("/") + "/")


def containing_mount(path, mounts):
    best = ("/", 0)
    for point, flags in mounts:
        if under(path, point) and len(point) >= len(best[0]):
            best = (point, flags)
    return best[1]


def remount_ro(target, flags):
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | (flags & ~MS_RDONLY))


def build_filesystem(cfg, tags):
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mounts = mountinfo()
    for point, flags in mounts:  # everything read-only, in this namespace only
        try:
            remount_ro(point, flags)
        except OSError:
            if not any(under(point, top) for top in ("/proc", "/sys", "/dev")):
                raise
    tags.append("rofs")
    expose = sorted(set(cfg["expose"]))
    expose = [p for p in expose if not any(q != p and under(p, q) for q in expose)]
    hide = set(p for p in cfg["hide"] if not any(under(p, e) for e in expose))
    if not cfg["userns"]:  # directories the sandbox uid could not traverse to the interpreter
        for path in expose:
            parts = path.strip("/").split("/")
            for i in range(1, len(parts)):
                ancestor = "/" + "/".join(parts[:i])
                if not os.stat(ancestor).st_mode & 0o001:
                    hide.add(ancestor)
    hide = sorted(p for p in hide if os.path.isdir(p) and not os.path.islink(p))
    hide = [p for p in hide if not any(q != p and under(p, q) for q in hide)]
    for top in hide:
        cover(top, MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=1024,mode=0755", expose, mounts)
        remount_ro(top, MS_NOSUID | MS_NODEV | MS_RELATIME)
    if hide:
        tags.append("hide:" + ",".join(hide))
    nodes = [n for n in ("null", "zero", "full", "random", "urandom") if os.path.exists("/dev/" + n)]
    handles = [(n, os.open("/dev/" + n, os.O_PATH | os.O_CLOEXEC)) for n in nodes]
    cover("/dev", MS_NOSUID | MS_NOEXEC, "size=64k,nr_inodes=64,mode=0755", expose, mounts)
    for name, fd in handles:
        os.close(os.open("/dev/" + name, os.O_CREAT | os.O_WRONLY, 0o666))
        mount(f"/proc/self/fd/{fd}", "/dev/" + name, None, MS_BIND)
        os.close(fd)
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, "/dev/" + name)
    os.mkdir("/dev/shm", 0o755)
    tags.append("mindev")
    disk_mb = int(cfg["disk_mb"])
    options = f"size={disk_mb}m,nr_inodes=4096,mode=1777"
    for path in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(path) and not os.path.islink(path):
            cover(path, MS_NOSUID | MS_NODEV, options, expose, mounts)
    remount_ro("/dev", MS_NOSUID | MS_NOEXEC | MS_RELATIME)
    tags.append(f"tmpfs:{disk_mb}m")


def cover(top, flags, options, expose, mounts):
    """Mount a fresh tmpfs on ``top``; the exposed paths below it stay visible, read-only."""
    inside = [p for p in expose if under(p, top) and p != top]
    handles = [(p, os.open(p, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)) for p in inside]
    mount("tmpfs", top, "tmpfs", flags, options)
    for path, fd in handles:
        os.makedirs(path, 0o755, exist_ok=True)
        mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        remount_ro(path, containing_mount(path, mounts))
        os.close(fd)


# System calls of the filter and of the keyring, by machine (the helper is python -I -S, so a
# library such as libseccomp's bindings is out of reach; the filter is a dozen instructions).
SYSCALLS = {
    "x86_64": {"keyctl": 250, "add_key": 248, "request_key": 249, "unshare": 272, "clone": 56, "clone3": 435},
    "aarch64": {"keyctl": 219, "add_key": 217, "request_key": 218, "unshare": 97, "clone": 220, "clone3": 435},
}
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
EPERM, ENOSYS = 1, 38
MACHINE = os.uname().machine


def seccomp_program():
    """Classic BPF: no keyrings (keyctl, add_key, request_key: EPERM), no new user namespace
    (unshare or clone with CLONE_NEWUSER: EPERM; clone3, whose flags a filter cannot read:
    ENOSYS, so that libc falls back to clone), no other system-call ABI (ENOSYS)."""
    nr = SYSCALLS[MACHINE]
    LD, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|..|K
    ALLOW, ERRNO = 0x7FFF0000, 0x00050000
    code = [(LD, 0, 4), (JEQ, 1, AUDIT_ARCH[MACHINE]), (RET, None, ERRNO | ENOSYS), (LD, 0, 0)]
    if MACHINE == "x86_64":
        code += [(JGE, "nosys", 0x40000000)]  # the x32 ABI
    code += [(JEQ, "deny", nr[name]) for name in ("keyctl", "add_key", "request_key")]
    code += [
        (JEQ, "nosys", nr["clone3"]),
        (JEQ, "flags", nr["unshare"]),
        (JEQ, "flags", nr["clone"]),
        (RET, None, ALLOW),
        "flags",
        (LD, 0, 16),
        (JSET, "deny", CLONE_NEWUSER),
        (RET, None, ALLOW),
        "deny",
        (RET, None, ERRNO | EPERM),
        "nosys",
        (RET, None, ERRNO | ENOSYS),
    ]
    labels, at = {}, 0
    for item in code:
        if isinstance(item, str):
            labels[item] = at
        else:
            at += 1
    out = []
    for item in code:
        if isinstance(item, str):
            continue
        op, target, k = item
        jt = 0
        if op in (JEQ, JGE, JSET):
            jt = target if isinstance(target, int) else labels[target] - len(out) - 1
        out.append((op, jt, 0, k))
    return out


def install_seccomp():
    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    code = seccomp_program()
    filters = (Filter * len(code))(*[Filter(*c) for c in code])
    program = Program(len(code), filters)
    check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(program), 0, 0), "prctl(PR_SET_SECCOMP)")


def fresh_session_keyring():
    """Leave the caller's session keyring for an empty one of this execution."""
    keyring = libc.syscall(SYSCALLS[MACHINE]["keyctl"], 1, None)  # KEYCTL_JOIN_SESSION_KEYRING
    if keyring < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"keyctl(JOIN_SESSION_KEYRING): {os.strerror(err)}")


LANDLOCK_WRITE = (2 | 16 | 32 | 64 | 128 | 256 | 512 | 1024 | 2048 | 4096, 8192, 16384)
LANDLOCK_FILE_WRITE = (2, 0, 16384)  # rights a rule on a file (not a directory) may hold


def landlock_writes(writable_dirs, writable_files):
    """Writes (and creating, removing, renaming, truncating) allowed only beneath
    ``writable_dirs`` and to ``writable_files``: /proc (oom_score_adj...) and every other file
    stay read-only whatever its mode. Pipes and sockets are not paths and stay usable."""
    abi = libc.syscall(444, None, 0, 1)  # landlock_create_ruleset(.., VERSION)
    if abi < 1:
        raise OSError(ctypes.get_errno(), "landlock unavailable")
    handled = sum(LANDLOCK_WRITE[:abi])
    file_rights = sum(LANDLOCK_FILE_WRITE[:abi])
    attr = ctypes.c_uint64(handled)
    ruleset = libc.syscall(444, ctypes.byref(attr), ctypes.c_size_t(8), 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")

    class Beneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]

    try:
        for path, rights in [(p, handled) for p in writable_dirs] + [(p, file_rights) for p in writable_files]:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                rule = Beneath(rights, fd)
                check(libc.syscall(445, ruleset, 1, ctypes.byref(rule), 0), f"landlock_add_rule {path}")
            finally:
                os.close(fd)
        check(libc.syscall(446, ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return abi


def confine(cfg, tags):
    """Landlock and seccomp, the last steps before the program runs (no_new_privs is set).
    Where the kernel lacks one, the tags say so and the rest still applies."""
    writable = [cfg["workdir"]] + [p for p in ("/tmp", "/var/tmp", "/dev/shm") if cfg["namespaces"]]
    try:
        abi = landlock_writes(writable, ["/dev/" + n for n in ("null", "zero", "full", "random", "urandom")])
        tags.append(f"landlock:v{abi}")
    except OSError as exc:
        tags.append(f"no-landlock:{exc}")
    if MACHINE not in SYSCALLS:
        tags.append(f"no-seccomp:unknown machine {MACHINE}")
        return
    try:
        install_seccomp()
        tags.append("seccomp")
    except OSError as exc:
        tags.append(f"no-seccomp:{exc}")


def host_unix_sockets():
    """Paths of the Unix sockets bound in this (still the caller's) network namespace."""
    paths = set()
    try:
        with open("/proc/self/net/unix") as f:
            next(f, None)
            for line in f:
                fields = line.split(None, 7)
                if len(fields) == 8 and fields[7].startswith("/"):
                    paths.add(fields[7].rstrip("\n"))
    except OSError:
        pass
    return paths


def cover_sockets(paths, tags):
    """Bind /dev/null over every socket still in sight (connect() then fails with
    ECONNREFUSED): those of this host's namespace and sockets bind-mounted into it."""
    import stat

    paths = set(paths) | set(point for point, _ in mountinfo())
    covered = 0
    for path in sorted(paths):
        try:
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                continue
        except OSError:
            continue
        mount("/dev/null", path, None, MS_BIND)
        covered += 1
    tags.append(f"unixsockets:{covered} covered")


def join_cgroup(cfg, tags):
    """Be in the execution's cgroup before starting anything (the caller moves the helper
    there while it starts; a move costs an RCU grace period, so it is not done twice)."""
    if cfg["cgroup"]:
        name = "/" + os.path.basename(os.path.dirname(cfg["cgroup"]))
        with open("/proc/self/cgroup") as f:
            inside = any(line.rstrip("\n").endswith(name) for line in f)
        if not inside:
            with open(cfg["cgroup"], "w") as f:
                f.write("0")
    tags.append(cfg["cgroup_tag"])


def loopback_up():
    import fcntl
    import socket
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, 0x8913, request))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", flags | 1))  # SIOCSIFFLAGS


def close_stdio():
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def exec_program(cfg, tags):
    """Limits, privileges, exec: the program's own process."""
    import resource

    STAGE[0] = "program"
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for name, value in cfg["rlimits"].items():
        if name == "CPU":
            value = (value, value + 1)  # SIGXCPU, then SIGKILL a second later
        else:
            value = (value, value)
        resource.setrlimit(getattr(resource, "RLIMIT_" + name), value)
    tags.append("rlimits")
    fresh_session_keyring()
    tags.append("keyring:fresh")
    uid = cfg["uid"]
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        tags.append(f"uid:{uid}")
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after the uid change, which clears it
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    tags.append("nonewprivs")
    os.chdir(cfg["workdir"])
    confine(cfg, tags)
    report(tags=tags)
    os.set_inheritable(REPORT_FD, False)
    if cfg["inline"]:  # trusted code (the tests' harness): runs in this interpreter
        os.close(REPORT_FD)
        drop_capabilities()  # held in a user namespace until an exec, which this skips
        os.environ.clear()
        os.environ.update(cfg["env"])
        try:
            exec(
                compile(cfg["program"], cfg["workdir"] + "/main.py", "exec"),
                {"__name__": "__main__", "__builtins__": __builtins__},
            )
        finally:
            os._exit(1)  # it must end with its own os._exit(0) to pass
    os.execve(cfg["python"], [cfg["python"], "-I", "main.py"], cfg["env"])


def drop_capabilities():
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    check(libc.capset(header, (ctypes.c_uint32 * 6)()), "capset")


def count_live():
    """Reap what has exited; count the rest (this namespace's /proc, without init)."""
    live = 0
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break
    for name in os.listdir("/proc"):
        if name.isdigit() and name != "1":
            try:
                with open(f"/proc/{name}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                        live += 1
            except (OSError, IndexError):
                pass
    return live


def parent_pid():
    """The parent's pid as the (still original) /proc sees it; getppid() says 0 in a new PID
    namespace."""
    with open("/proc/self/status") as f:
        return int([line for line in f if line.startswith("PPid:")][0].split()[1])


def init(cfg, helper):
    """PID 1 of the new PID namespace."""
    STAGE[0] = "init"
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent_pid() != helper:  # the helper died before the line above
        os._exit(125)
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    work, uid = cfg["workdir"], cfg["uid"]
    os.mkdir(work, 0o700)
    fd = os.open(work + "/main.py", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, cfg["program"].encode("utf-8", "surrogatepass"))
    os.close(fd)
    if uid is not None:
        os.chown(work, uid, uid)
        os.chown(work + "/main.py", uid, uid)
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("1000")
    pid = os.fork()
    if pid == 0:
        try:
            exec_program(cfg, ["oomfirst"])
        except BaseException as exc:
            report(error=f"{STAGE[0]}: {exc!r}", stage=STAGE[0])
        os._exit(125)
    close_stdio()
    while True:
        child, status = os.waitpid(-1, 0)
        if child == pid:
            break
    live, deadline = count_live(), time.monotonic() + 0.05
    while live and time.monotonic() < deadline:
        time.sleep(0.005)
        live = count_live()
    report(status=status, strays=live)
    os._exit(0)


def main():
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != CALLER:  # the caller died before the line above
        os._exit(125)
    data = b""
    while True:
        chunk = os.read(CFG_FD, 1 << 20)
        if not chunk:
            break
        data += chunk
    os.close(CFG_FD)
    cfg = json.loads(data)
    os.umask(0o022)
    STAGE[0] = "cgroup"
    tags = []
    join_cgroup(cfg, tags)
    if not cfg["namespaces"]:
        os.chdir(cfg["workdir"])
        exec_program(cfg, tags)
    STAGE[0] = "namespaces"
    sockets = host_unix_sockets()
    before = os.readlink("/proc/self/ns/mnt")
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC
    if cfg["userns"]:
        uid, gid = os.getuid(), os.getgid()
        check(libc.unshare(flags | CLONE_NEWUSER), "unshare")
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")
        tags.append("userns")
    else:
        check(libc.unshare(flags), "unshare")
    if os.readlink("/proc/self/ns/mnt") == before:
        raise OSError("unshare(CLONE_NEWNS) left the mount namespace unchanged")
    tags += ["netns", "pidns", "ipcns", "mountns"]
    try:
        loopback_up()
    except OSError:
        pass
    build_filesystem(cfg, tags)
    cover_sockets(sockets, tags)
    report(tags=tags)
    STAGE[0] = "fork"
    helper = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            init(cfg, helper)
        except BaseException as exc:
            report(error=f"{STAGE[0]}: {exc!r}", stage=STAGE[0])
        os._exit(125)
    report(init_pid=pid)
    close_stdio()
    os.waitpid(pid, 0)
    os._exit(0)


if __name__ == "__main__":
    CFG_FD, REPORT_FD, CALLER = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    try:
        main()
    except BaseException as exc:
        report(error=f"{STAGE[0]}: {exc!r}", stage=STAGE[0])
        os._exit(125)
