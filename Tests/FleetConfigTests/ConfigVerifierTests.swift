import Foundation
import OutpostCore
import Testing
@testable import FleetConfig

@Suite struct ConfigVerifierTests {
    let good = #"{"model":{"path":"/models/m.gguf"},"generation":{"temperature":0,"max_tokens":128},"cache":{"ttl_s":600}}"#

    @Test func goodConfigVerifiesWithItsExactBytes() throws {
        let data = try Fleet.signed(good, version: 3)
        let config = try Fleet.verifier().verify(data, applied: .init(fleet: 2), now: Fleet.now)
        #expect(config.version == 3)
        #expect(config.source == .fleet)
        #expect(config.envelope.payload == Array(good.utf8))
        #expect(config.settings.modelPath == "/models/m.gguf")
        #expect(config.settings["cache", "ttl_s"] == .number(600))
    }

    @Test func eitherTrustedKeyVerifiesForRotation() throws {
        let verifier = Fleet.verifier(keys: [Fleet.ops, Fleet.ops2])
        #expect(try verifier.verify(Fleet.signed(good, version: 1), applied: .init(), now: Fleet.now).version == 1)
        #expect(try verifier.verify(Fleet.signed(good, version: 2, key: Fleet.ops2), applied: .init(), now: Fleet.now).version == 2)
    }

    @Test func untrustedKeyIsRejected() throws {
        let data = try Fleet.signed(good, version: 3, key: Fleet.ops2)
        let error = expectFailure("untrusted_key") { _ = try Fleet.verifier().verify(data, applied: .init(), now: Fleet.now) }
        #expect(error?.message.contains("ops-2027") == true)
    }

    @Test func sameKeyIDOtherKeyIsABadSignature() throws {
        let impostor = SigningKey.generate(keyID: "ops")
        let data = try Fleet.signed(good, version: 3, key: impostor)
        expectFailure("bad_signature") { _ = try Fleet.verifier().verify(data, applied: .init(), now: Fleet.now) }
    }

    @Test(arguments: ["payload", "version", "target", "expires_at", "issued_at", "encoding"])
    func tamperingWithAnySignedFieldBreaksTheSignature(field: String) throws {
        let data = try Fleet.signed(good, version: 3, expiresAt: Fleet.now + 3600)
        let tampered = try Fleet.tamper(data) { o in
            switch field {
            case "payload": o["payload"] = Data(good.replacingOccurrences(of: "600", with: "601").utf8).base64EncodedString()
            case "version": o["version"] = 4
            case "target": o["target"] = "gw-1"
            case "expires_at": o["expires_at"] = Fleet.now + 7200
            case "issued_at": o["issued_at"] = Fleet.now
            default: o["encoding"] = "zstd"
            }
        }
        expectFailure("bad_signature") {
            _ = try Fleet.verifier(zstd: { frame, _ in frame }).verify(tampered, applied: .init(), now: Fleet.now)
        }
    }

    @Test func semanticallyEqualButReserialisedPayloadIsRejected() throws {
        // Same JSON meaning, different bytes: the signature covers bytes, not meaning.
        let data = try Fleet.signed(good, version: 3)
        let spaced = good.replacingOccurrences(of: ",", with: ", ")
        let tampered = try Fleet.tamper(data) { $0["payload"] = Data(spaced.utf8).base64EncodedString() }
        expectFailure("bad_signature") { _ = try Fleet.verifier().verify(tampered, applied: .init(), now: Fleet.now) }
    }

    @Test func replayAndDowngradeAreRejectedPerSource() throws {
        let v5 = try Fleet.signed(good, version: 5)
        expectFailure("replay") { _ = try Fleet.verifier().verify(v5, applied: .init(fleet: 5), now: Fleet.now) }
        expectFailure("downgrade") { _ = try Fleet.verifier().verify(v5, applied: .init(fleet: 6), now: Fleet.now) }
        // The gateway's own sequence does not block fleet versions.
        #expect(try Fleet.verifier().verify(v5, applied: .init(fleet: 4, gateway: 9), now: Fleet.now).version == 5)
        let gw = try Fleet.signed(good, version: 2, target: "gw-1")
        expectFailure("downgrade") { _ = try Fleet.verifier().verify(gw, applied: .init(fleet: 0, gateway: 3), now: Fleet.now) }
    }

    @Test func expiredIsRejected() throws {
        let data = try Fleet.signed(good, version: 3, expiresAt: Fleet.now - 1)
        expectFailure("expired") { _ = try Fleet.verifier().verify(data, applied: .init(), now: Fleet.now) }
        let fresh = try Fleet.signed(good, version: 3, expiresAt: Fleet.now + 1)
        #expect(try Fleet.verifier().verify(fresh, applied: .init(), now: Fleet.now).version == 3)
    }

    @Test func targetMustBeFleetOrThisGateway() throws {
        let mine = try Fleet.signed(good, version: 3, target: "gw-1")
        #expect(try Fleet.verifier().verify(mine, applied: .init(), now: Fleet.now).source == .gateway)
        let other = try Fleet.signed(good, version: 3, target: "gw-2")
        expectFailure("wrong_target") { _ = try Fleet.verifier().verify(other, applied: .init(), now: Fleet.now) }
        expectFailure("wrong_target") { _ = try Fleet.verifier(gateway: nil).verify(mine, applied: .init(), now: Fleet.now) }
    }

    @Test func oversizedIsRejectedBeforeParsing() throws {
        let big = Data(repeating: UInt8(ascii: " "), count: ConfigVerifier.defaultMaxEnvelopeBytes + 1)
        expectFailure("oversized") { _ = try Fleet.verifier().verify(big, applied: .init(), now: Fleet.now) }
        // A validly signed envelope over the limit is refused too.
        let padding = String(repeating: "x", count: 200 * 1024)
        let signed = try Fleet.signed(#"{"model":{"path":"\#(padding)"}}"#, version: 3)
        #expect(signed.count > ConfigVerifier.defaultMaxEnvelopeBytes)
        expectFailure("oversized") { _ = try Fleet.verifier().verify(signed, applied: .init(), now: Fleet.now) }
    }

    @Test(arguments: [("not-json.txt", "malformed"), ("array.json", "malformed"), ("missing-signature.json", "malformed"),
                      ("wrong-signature-scheme.json", "malformed"), ("fractional-version.json", "malformed"),
                      ("payload-not-base64.json", "malformed"), ("unknown-field.json", "unknown_key"),
                      ("forged-signature.json", "bad_signature")])
    func malformedAndForgedFixturesAreRejected(file: String, reason: String) throws {
        let data = try Fleet.fixture(file)
        expectFailure(reason) { _ = try Fleet.verifier().verify(data, applied: .init(), now: Fleet.now) }
    }

    @Test(arguments: [(#"{"cache":{"ttl":5}}"#, "cache.ttl"), (#"{"modle":{"path":"x"}}"#, "modle"),
                      (#"{"generation":{"seed":1}}"#, "generation.seed"), (#"{"mqtt":{"password":"x"}}"#, "mqtt.password")])
    func unknownPayloadKeysAreRejectedByName(payload: String, key: String) throws {
        let data = try Fleet.signed(payload, version: 3)
        let error = expectFailure("unknown_key") { _ = try Fleet.verifier().verify(data, applied: .init(), now: Fleet.now) }
        #expect(error?.message.contains("\"\(key)\"") == true)
    }

    @Test(arguments: [#"{"cache":{"ttl_s":"600"}}"#, #"{"cache":{"batch_size":0}}"#, #"{"model":{"path":""}}"#,
                      #"{"generation":{"temperature":5}}"#, #"{"invalidate":{"tags":["a",1]}}"#, #"{"model":"x"}"#,
                      #"[]"#, #"{"generation":{"max_tokens":300,"max_tokens_limit":200}}"#, "not json"])
    func invalidPayloadsAreRejected(payload: String) throws {
        let data = try Fleet.signed(payload, version: 3)
        expectFailure("invalid_payload") { _ = try Fleet.verifier().verify(data, applied: .init(), now: Fleet.now) }
    }

    @Test func zstdNeedsADecompressor() throws {
        let data = try Fleet.signed(good, version: 3, encoding: "zstd")
        let error = expectFailure("unsupported_encoding") { _ = try Fleet.verifier().verify(data, applied: .init(), now: Fleet.now) }
        #expect(error?.message.contains("not supported by this build") == true)
        // With one (identity here; the agent passes AnswerCache's zstd), the decoded bytes are validated.
        let config = try Fleet.verifier(zstd: { frame, _ in frame }).verify(data, applied: .init(), now: Fleet.now)
        #expect(config.settings.modelPath == "/models/m.gguf")
        let other = try Fleet.signed(good, version: 3, encoding: "gzip")
        expectFailure("unsupported_encoding") { _ = try Fleet.verifier().verify(other, applied: .init(), now: Fleet.now) }
    }

    @Test func keyFilesRoundTripAndBadOnesAreRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let pub = dir.appendingPathComponent("fleet.pub").path
        let key = dir.appendingPathComponent("fleet.key").path
        try Fleet.ops.trustedKey.fileText.write(toFile: pub, atomically: true, encoding: .utf8)
        try Fleet.ops.fileText.write(toFile: key, atomically: true, encoding: .utf8)
        #expect(try TrustedKey.load(path: pub).publicKey.rawRepresentation == Fleet.ops.privateKey.publicKey.rawRepresentation)
        #expect(try SigningKey.load(path: key).keyID == "ops")
        expectFailure("key_file") { _ = try TrustedKey.load(path: key) }  // a private key is not a public key file
        try "outpost-fleet-public-key v1\nkey_id: a\ned25519: AAAA\n".write(toFile: pub, atomically: true, encoding: .utf8)
        expectFailure("key_file") { _ = try TrustedKey.load(path: pub) }
        expectFailure("key_file") { _ = try TrustedKey.load(path: dir.appendingPathComponent("missing").path) }
    }
}
