import Foundation
import OutpostTesting
import Testing

/// `outpost config keygen|sign|verify|show` run as an operator runs them.
@Suite struct ConfigCommandTests {
    func keygen(_ dir: TemporaryDirectory, _ name: String, id: String) throws -> (key: String, pub: String) {
        let out = dir.file(name).path
        let r = try OutpostBinary.run(["config", "keygen", "--out", out, "--key-id", id])
        #expect(r.status == 0, "\(r.stderr)")
        return (out + "/fleet.key", out + "/fleet.pub")
    }

    @Test func keygenSignVerifyRoundTrip() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let (key, pub) = try keygen(dir, "keys", id: "ops")
        var st = stat()
        #expect(stat(key, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        let pubText = try String(contentsOfFile: pub, encoding: .utf8)
        #expect(pubText.hasPrefix("outpost-fleet-public-key v1\nkey_id: ops\ned25519: "))

        let cfg = dir.file("cfg.json").path
        try #"{"model":{"path":"/models/m.gguf"},"cache":{"ttl_s":600}}"#.write(toFile: cfg, atomically: true, encoding: .utf8)
        let signed = dir.file("signed.json").path
        let s = try OutpostBinary.run(["config", "sign", "--key", key, "--version", "7", "--in", cfg, "--expires", "24h", "--out", signed])
        #expect(s.status == 0, "\(s.stderr)")

        let v = try OutpostBinary.run(["config", "verify", "--trust-key", pub, "--in", signed, "--json"])
        #expect(v.status == 0, "\(v.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(v.stdout.utf8)) as? [String: Any])
        #expect(o["version"] as? Int == 7)
        #expect(o["target"] as? String == "fleet")
        #expect(o["key_id"] as? String == "ops")
        #expect(o["keys"] as? [String] == ["cache.ttl_s", "model.path"])
        #expect(o["expires_at"] is Int)

        let z = dir.file("signed-zstd.json").path
        #expect(try OutpostBinary.run(["config", "sign", "--key", key, "--version", "8", "--in", cfg, "--zstd", "--out", z]).status == 0)
        let vz = try OutpostBinary.run(["config", "verify", "--trust-key", pub, "--in", z])
        #expect(vz.status == 0, "\(vz.stderr)")
        #expect(vz.stdout.hasPrefix("valid: version 8, target fleet, key ops"))
    }

    @Test func verifyRejectsWithTheReason() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let (key, pub) = try keygen(dir, "a", id: "ops")
        let (_, otherPub) = try keygen(dir, "b", id: "other")
        let cfg = dir.file("cfg.json").path
        try #"{"cache":{"ttl_s":600}}"#.write(toFile: cfg, atomically: true, encoding: .utf8)
        let signed = dir.file("signed.json").path
        #expect(try OutpostBinary.run(["config", "sign", "--key", key, "--version", "3", "--in", cfg, "--out", signed]).status == 0)

        let wrongKey = try OutpostBinary.run(["config", "verify", "--trust-key", otherPub, "--in", signed])
        #expect(wrongKey.status == 1)
        #expect(wrongKey.stderr.contains("untrusted_key"))
        // Rotation: trusting both keys accepts it.
        #expect(try OutpostBinary.run(["config", "verify", "--trust-key", otherPub, "--trust-key", pub, "--in", signed]).status == 0)

        let replay = try OutpostBinary.run(["config", "verify", "--trust-key", pub, "--in", signed, "--applied-version", "3"])
        #expect(replay.status == 1)
        #expect(replay.stderr.contains("replay"))

        var envelope = try String(contentsOfFile: signed, encoding: .utf8)
        envelope = envelope.replacingOccurrences(of: #""version":3"#, with: #""version":4"#)
        try envelope.write(toFile: signed, atomically: true, encoding: .utf8)
        let tampered = try OutpostBinary.run(["config", "verify", "--trust-key", pub, "--in", signed])
        #expect(tampered.status == 1)
        #expect(tampered.stderr.contains("bad_signature"))

        try #"{"cache":{"ttl":600}}"#.write(toFile: cfg, atomically: true, encoding: .utf8)
        let unknown = try OutpostBinary.run(["config", "sign", "--key", key, "--version", "5", "--in", cfg, "--out", signed])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("\"cache.ttl\""))
    }

    @Test func showPrintsTheCommittedConfig() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let empty = try OutpostBinary.run(["config", "show", "--state-dir", dir.path])
        #expect(empty.status == 0, "\(empty.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(empty.stdout.utf8)) as? [String: Any])
        #expect(o["version"] as? Int == 0)
        #expect(o["config"] as? [String: Any] != nil)
    }
}
