import Foundation
import Hush

/// Trust on first use of a relay's trust root: `GET /v1/trust-root` (Docs/spec/relay.md §12),
/// over a plain blocking socket with a timeout (one small request; no HTTP library needed).
public enum TrustRootFetch {
    /// The relay's trust root as it answers it now. Unauthenticated: show it to the user.
    public static func fetch(_ relay: RelayAddress, timeoutSeconds: Int = 10) throws(CLIError) -> Curve25519.KeyAgreement.PublicKey {
        let body = try get(host: relay.host, port: relay.port, path: "/v1/trust-root", timeoutSeconds: timeoutSeconds)
        return try HushHome.parseTrustRoot(body)
    }

    /// The body of a `200` answer to `GET path` (HTTP/1.0, at most 64 KiB).
    static func get(host: String, port: Int, path: String, timeoutSeconds: Int) throws(CLIError) -> String {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw .relay("cannot resolve \(host)")
        }
        defer { freeaddrinfo(list) }
        var fd: Int32 = -1
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            let s = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            if s >= 0 {
                var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
                setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                if connect(s, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { fd = s; break }
                close(s)
            }
            cursor = info.pointee.ai_next
        }
        guard fd >= 0 else { throw .relay("cannot connect to \(host):\(port)") }
        defer { close(fd) }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: \(host):\(port)\r\nConnection: close\r\n\r\n".utf8)
        let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == request.count else { throw .relay("cannot send to \(host):\(port)") }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while response.count < 65_536 {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 { throw .relay("no answer from \(host):\(port)") }
            if n == 0 { break }
            response += buffer[0..<n]
        }
        let text = String(decoding: response, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw .relay("not an HTTP answer") }
        let status = text[..<split.lowerBound].split(separator: "\r\n").first ?? ""
        guard status.split(separator: " ").dropFirst().first == "200" else {
            throw .relay("GET \(path) answered \(status) (a relay older than /v1/trust-root? pass --trust-root)")
        }
        return String(text[split.upperBound...])
    }
}
