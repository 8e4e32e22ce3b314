#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Unbuffered writes to stdout and stderr (write(2), retried until everything is out), so that
/// streamed text appears at once and interleaves correctly with `print`.
enum StandardStreams {
    static func out(_ bytes: some Collection<UInt8>) { write(1, bytes) }
    static func out(_ text: String) { write(1, Array(text.utf8)) }
    static func err(_ text: String) { write(2, Array(text.utf8)) }

    private static func write(_ fd: Int32, _ bytes: some Collection<UInt8>) {
        fflush(nil) // anything `print` buffered goes first
        let all = Array(bytes)
        all.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}
