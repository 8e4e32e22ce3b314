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
/// durable invalidation. The test reads those lines, sends SIGKILL, reopens the file and checks:
/// `integrity_check` is ok, every fill up to the last reported `S` is there unless a reported
/// invalidation covers it, and nothing a reported invalidation covers is there.
///
/// The executable is found by `OutpostBinary` (next to the test bundle, or `$OUTPOST_BINARY`).
@Suite struct CrashTests {
    @Test(.timeLimit(.minutes(2))) func killedWhileFillingLosesNothingFlushedAndResurrectsNothing() throws {
        let executable = try OutpostBinary.path()
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let child = try ChildProcess(pipingStdoutOf: executable, arguments: ["cache", "crash-fill", "--dir", dir.path])

        var durable = -1
        var invalidatedKeys: Set<Int> = []
        var invalidatedGroups: Set<Int> = []
        var flushLines = 0
        let deadline = Date().addingTimeInterval(60)
        while (flushLines < 20 || invalidatedGroups.count < 3) && Date() < deadline {
            guard let line = child.readLine() else { break }
            let parts = line.split(separator: " ")
            guard parts.count == 2, let n = Int(parts[1]) else { continue }
            switch parts[0] {
            case "flushed":
                durable = max(durable, n)
                flushLines += 1
            case "invalidated-key": invalidatedKeys.insert(n)
            case "invalidated-tag": invalidatedGroups.insert(n)
            default: break
            }
        }
        let status = child.killAndWait()
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
        // The child reports an invalidation after it is durable, so the kill may fall between the
        // two: the next invalidation of each kind may be on disk unreported, and may have removed
        // its fills. (Keys 1200, 2200, … are invalidated one by one; groups 0, 1, … by tag.)
        let unreportedKey = (invalidatedKeys.max() ?? 200) + 1000
        let unreportedGroup = (invalidatedGroups.max() ?? -1) + 1
        for i in 0...max(durable, 0) where durable >= 0 {
            let maybeDead = i == unreportedKey || i / 1000 == unreportedGroup
            let dead = invalidatedKeys.contains(i) || invalidatedGroups.contains(i / 1000)
            if maybeDead && !dead { continue }
            let present = stored.contains(Self.key(i))
            if dead && present { resurrected.append(i) }
            if !dead && !present { missing.append(i) }
        }
        for i in invalidatedKeys where stored.contains(Self.key(i)) { resurrected.append(i) }
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
