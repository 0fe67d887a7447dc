import Foundation

/// Reads a relay process's memory and CPU from `/proc` (Linux), and finds the process that
/// listens on a TCP port.
struct ProcessProbe {
    let pid: Int32

    /// Resident set size in bytes (`VmRSS` of `/proc/PID/status`), `nil` if unreadable.
    var rssBytes: Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1_024 }
        }
        return nil
    }

    /// User plus system CPU time in microseconds (`utime + stime` of `/proc/PID/stat`).
    var cpuMicroseconds: Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
        let rest = text[text.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        guard rest.count > 13, let utime = Int(rest[11]), let stime = Int(rest[12]) else { return nil }
        let ticks = Int(sysconf(Int32(_SC_CLK_TCK)))
        return (utime + stime) * 1_000_000 / max(ticks, 1)
    }

    /// The process holding a listening TCP socket on `port`, found through `/proc/net/tcp{,6}`
    /// and the processes' `fd` links; `nil` when none is visible.
    static func listener(port: Int) -> Int32? {
        var inodes = Set<String>()
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let f = line.split(separator: " ", omittingEmptySubsequences: true)
                guard f.count > 9, f[3] == "0A" else { continue }
                let local = f[1].split(separator: ":")
                guard local.count == 2, let p = Int(local[1], radix: 16), p == port else { continue }
                inodes.insert(String(f[9]))
            }
        }
        guard !inodes.isEmpty, let pids = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        let me = getpid()
        for name in pids {
            guard let pid = Int32(name), pid != me,
                  let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { continue }
            for fd in fds {
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                      target.hasPrefix("socket:[") else { continue }
                let inode = target.dropFirst(8).dropLast()
                if inodes.contains(String(inode)) { return pid }
            }
        }
        return nil
    }
}

/// Raises this process's open-file soft limit to its hard limit (one file per connection).
func raiseOpenFileLimit() -> Int {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    return Int(limit.rlim_cur)
}
