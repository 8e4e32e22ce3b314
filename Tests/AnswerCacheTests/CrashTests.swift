import Foundation
import Testing
import OutpostCore
import OutpostTesting
@testable import AnswerCache

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Kill -9 in the middle of filling at full speed.
///
/// The test runs the built `outpost` executable's hidden `cache crash-fill` subcommand, which
/// fills distinct keys 0, 1, 2, … as fast as it can (tagging key i with `group-(i/1000)`,
/// invalidating one older key every 1,000 fills and one older tag group every 1,000 fills) and
/// prints a line after each committed flush (`flushed S`: fills 0…S are durable) and each
/// invalidation (announced before it starts, confirmed once durable). The test reads those
/// lines, sends SIGKILL, reads what was left in the pipe, reopens the file and checks:
/// `integrity_check` is ok, every fill up to the last reported `S` is there unless an announced
/// invalidation covers it, and nothing a confirmed invalidation covers is there.
///
/// The executable is found by `OutpostBinary` (next to the test bundle, or `$OUTPOST_BINARY`).
@Suite struct CrashTests {
    @Test(.timeLimit(.minutes(2))) func killedWhileFillingLosesNothingFlushedAndResurrectsNothing() throws {
        let executable = try OutpostBinary.path()
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let child = try ChildProcess(pipingStdoutOf: executable, arguments: ["cache", "crash-fill", "--dir", dir.path])

        var durable = -1
        var announcedKeys: Set<Int> = [], announcedGroups: Set<Int> = []
        var invalidatedKeys: Set<Int> = [], invalidatedGroups: Set<Int> = []
        var flushLines = 0
        func take(_ line: String) {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let n = Int(parts[1]) else { return }
            switch parts[0] {
            case "flushed":
                durable = max(durable, n)
                flushLines += 1
            case "invalidating-key": announcedKeys.insert(n)
            case "invalidating-tag": announcedGroups.insert(n)
            case "invalidated-key": invalidatedKeys.insert(n)
            case "invalidated-tag": invalidatedGroups.insert(n)
            default: break
            }
        }
        let deadline = Date().addingTimeInterval(60)
        while (flushLines < 20 || invalidatedGroups.count < 3) && Date() < deadline {
            guard let line = child.readLine() else { break }
            take(line)
        }
        let status = child.killAndWait()
        // Whatever the child wrote before it died is still in the pipe.
        while let line = child.readLine() { take(line) }
        #expect(status == SIGKILL, "the child must die by SIGKILL, not exit on its own (status \(status))")
        #expect(flushLines >= 20 && invalidatedGroups.count >= 3, "the child reported too little before the deadline")

        let path = dir.file("crash.sqlite").path
        let check = try AnswerCache.check(path: path)
        #expect(check.integrity == ["ok"])
        let cache = try AnswerCache(configuration: AnswerCache.Configuration(path: path))
        defer { cache.close() }
        #expect(try cache.integrityCheck() == ["ok"])
        let stored = Set(try cache.storedKeys())
        var missing: [Int] = []
        var resurrected: [Int] = []
        for i in 0...max(durable, 0) where durable >= 0 {
            // An announced invalidation may or may not have committed before the kill.
            let mayBeGone = announcedKeys.contains(i) || announcedGroups.contains(i / 1000)
            if !mayBeGone && !stored.contains(Self.key(i)) { missing.append(i) }
        }
        for i in invalidatedKeys where stored.contains(Self.key(i)) { resurrected.append(i) }
        for group in invalidatedGroups {
            for i in group * 1000..<(group + 1) * 1000 where stored.contains(Self.key(i)) { resurrected.append(i) }
        }
        #expect(missing.isEmpty, "fills reported durable but lost: \(missing.prefix(10))")
        #expect(resurrected.isEmpty, "invalidated fills present: \(resurrected.prefix(10))")
        #expect(durable > 1000)
        // Every reported invalidation was durable: its tombstone is there too.
        #expect(check.tombstones >= invalidatedKeys.count + invalidatedGroups.count)
    }

    /// The crash-fill subcommand's keys.
    static func key(_ n: Int) -> CacheKey {
        CacheKey.derive(modelFingerprint: "outpost-cache-bench", chatTemplate: "chatml",
                        messages: [ChatMessage(role: "user", content: "synthetic question \(n)")],
                        sampling: SamplingParameters(), namespace: Query.defaultNamespace)
    }
}
