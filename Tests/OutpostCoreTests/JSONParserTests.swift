import Foundation
import Inference
import OutpostTesting
import Testing
@testable import OutpostCore

@Suite struct JSONParserTests {
    func parse(_ text: String) throws(QueryError) -> JSONValue { try JSONValue.parse(Data(text.utf8)) }

    func reason(_ bytes: [UInt8]) -> String? {
        do { _ = try JSONValue.parse(Data(bytes)); return nil } catch { return error.message }
    }

    func reason(_ text: String) -> String? { reason(Array(text.utf8)) }

    @Test func everyKindOfValue() throws {
        #expect(try parse(#" {"a": [1, -2.5e3, true, false, null, "x"], "b": {}} "#) == .object([
            "a": .array([.number(1), .number(-2500), .bool(true), .bool(false), .null, .string("x")]),
            "b": .object([:]),
        ]))
        #expect(try parse("[]") == .array([]))
        #expect(try parse("0") == .number(0))
        #expect(try parse("-0.125") == .number(-0.125))
        #expect(try parse("1E2") == .number(100))
        #expect(try parse("123456789012345678") == .number(123456789012345678))
        #expect(try parse(#""""#) == .string(""))
    }

    @Test func escapesAndUnicode() throws {
        #expect(try parse(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{08}\u{0C}\n\r\t"))
        #expect(try parse(#""\u00e9\u20AC\ud83d\ude00""#) == .string("é€😀"))
        #expect(try parse("\"caf\u{E9} 😀\"") == .string("café 😀"))
    }

    @Test func agreesWithFoundationOnValidDocuments() throws {
        let docs = [
            #"{"model":"m","messages":[{"role":"user","content":"Hi \u00e9 \n"}],"max_tokens":32,"temperature":0.7}"#,
            #"[1.5, 2, 3e-2, "s", {"k": [null, true]}]"#,
            #"{"nested": {"deeper": {"deepest": [0.1, 0.2, 1e300]}}}"#,
        ]
        for doc in docs {
            #expect(try parse(doc) == JSONDecoder().decode(JSONValue.self, from: Data(doc.utf8)))
        }
    }

    @Test func malformedInputIsRefusedWithAReasonAndOffset() {
        let cases: [(String, String)] = [
            ("", "empty input"),
            ("   ", "no value"),
            ("{", "expected a member name"),
            (#"{"a":1,}"#, "a trailing comma in an object"),
            ("[1, ]", "a trailing comma in an array"),
            ("[,1]", "unexpected character ','"),
            ("[1 2]", "expected ',' or ']'"),
            (#"{"a" 1}"#, "expected ':'"),
            ("01", "leading zeros"),
            ("1.", "digits after '.'"),
            ("1e", "exponent"),
            ("-", "needs digits"),
            ("+1", "unexpected character '+'"),
            ("1e999", "does not fit"),
            ("-2.5e-400", "does not fit"),
            ("tru", "invalid literal"),
            ("nul", "invalid literal"),
            ("{} {}", "after the value"),
            (#""abc"#, "unterminated string"),
            ("\"a\u{01}b\"", "control character"),
            (#""\x""#, "invalid escape"),
            (#""\u12""#, "four hex digits"),
            (#""\ud800""#, "high surrogate"),
            (#""\ud800\u0041""#, "high surrogate"),
            (#""\udc00""#, "low surrogate"),
            (#"{"a":1,"a":2}"#, "duplicate member \"a\""),
            ("NaN", "unexpected character 'N'"),
        ]
        for (text, expected) in cases {
            let r = reason(text)
            #expect(r?.contains(expected) == true, "\(text.debugDescription): \(r ?? "accepted")")
            #expect(r?.contains("at byte") == true)
        }
        #expect(reason([0x22, 0xC3, 0x28, 0x22])?.contains("not valid UTF-8") == true)
        #expect(reason([0x22, 0xED, 0xA0, 0x80, 0x22])?.contains("not valid UTF-8") == true) // encoded surrogate
        #expect(reason([0xFF])?.contains("0xff") == true)
    }

    @Test func nestingIsBounded() throws {
        let ok = String(repeating: "[", count: JSONValue.maxDepth) + String(repeating: "]", count: JSONValue.maxDepth)
        #expect(throws: Never.self) { try parse(ok) }
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(reason(deep)?.contains("nested deeper than \(JSONValue.maxDepth)") == true)
        let objects = String(repeating: #"{"a":"#, count: 10_000)
        #expect(reason(objects)?.contains("nested deeper") == true)
    }

    @Test func everyTruncationOfAValidDocumentIsRefusedCleanly() {
        let doc = Array(#"{"messages":[{"role":"user","content":"caf\u00e9 é"}],"max_tokens":32,"stream":true}"#.utf8)
        for n in 0..<doc.count {
            #expect(reason(Array(doc[..<n])) != nil, "prefix of \(n) bytes was accepted")
        }
    }

    @Test func encodedValuesParseBackEqual() throws {
        let value = JSONValue.object([
            "s": .string("quote \" backslash \\ newline \n nul \u{0} é 😀"), "n": .number(-1.25), "i": .int(42),
            "a": .array([.null, .bool(true)]), "o": .object(["k": .string("v")]),
        ])
        #expect(try JSONValue.parse(Data(value.encoded())) == value)
    }
}

@Suite struct CryptoTests {
    @Test func sha256KnownAnswers() {
        #expect(hexString(SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hexString(SHA256.hash([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        var h = SHA256()
        h.update(Array("ab".utf8))
        h.update(Array("c".utf8))
        #expect(hexString(h.finalize()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func ed25519MatchesRFC8032() throws {
        // RFC 8032 section 7.1, test 2 (one-byte message 0x72).
        let key = try Ed25519.PrivateKey(rawRepresentation: hexBytes("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"))
        #expect(key.publicKey.rawRepresentation == hexBytes("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"))
        let signature = try key.signature(for: [0x72])
        #expect(signature == hexBytes("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"))
        #expect(key.publicKey.isValidSignature(signature, for: [0x72]))
        #expect(!key.publicKey.isValidSignature(signature, for: [0x73]))
        var flipped = signature
        flipped[10] ^= 1
        #expect(!key.publicKey.isValidSignature(flipped, for: [0x72]))
        #expect(!key.publicKey.isValidSignature(signature.dropLast(), for: [0x72]))
    }

    @Test func badKeysAreRefused() throws {
        #expect(throws: Ed25519.KeyError.wrongLength(31)) { try Ed25519.PublicKey(rawRepresentation: [UInt8](repeating: 1, count: 31)) }
        #expect(throws: Ed25519.KeyError.wrongLength(0)) { try Ed25519.PrivateKey(rawRepresentation: []) }
        let a = Ed25519.PrivateKey(), b = Ed25519.PrivateKey()
        #expect(a.rawRepresentation != b.rawRepresentation)
        #expect(try a.publicKey.isValidSignature(a.signature(for: [1, 2, 3]), for: [1, 2, 3]))
        #expect(try !b.publicKey.isValidSignature(a.signature(for: [1, 2, 3]), for: [1, 2, 3]))
    }
}

@Suite struct PlatformHelperTests {
    @Test func paths() {
        #expect(Paths.join("/a", "b") == "/a/b")
        #expect(Paths.join("/a/", "b") == "/a/b")
        #expect(Paths.join("/a", "/b") == "/a/b")
        #expect(Paths.join("", "b") == "b")
        #expect(Paths.join("/a", "b/c.sock") == "/a/b/c.sock")
        #expect(Paths.lastComponent("/a/b.gguf") == "b.gguf")
        #expect(Paths.lastComponent("/a/b/") == "b")
        #expect(Paths.lastComponent("b") == "b")
        #expect(Paths.directory("/a/b") == "/a")
        #expect(Paths.directory("/a") == "/")
        #expect(Paths.directory("b") == "")
        #expect(Paths.deletingExtension("m.Q4_1.gguf") == "m.Q4_1")
        #expect(Paths.deletingExtension(".hidden") == ".hidden")
        for (base, component) in [("/x/y", "z"), ("/x/", "z/w"), ("rel", "f.txt")] {
            #expect(Paths.join(base, component) == (base as NSString).appendingPathComponent(component))
        }
    }

    @Test func printfFormatting() {
        #expect(String(printf: "%.3f s", 1.23456) == "1.235 s")
        #expect(String(printf: "%d/%d %5.1f%%", 3, 4, 75.0) == "3/4  75.0%")
        #expect(String(printf: "%02x", 10) == "0a")
        let long = String(printf: "%0300d", 7)
        #expect(long.count == 300 && long.hasSuffix("07"))
        #expect(hexString([0, 255, 16]) == "00ff10")
    }

    @Test func trimmingAndPadding() {
        #expect("  \t a b \n".trimmingWhitespace() == "a b")
        #expect("   ".trimmingWhitespace() == "")
        #expect("ab".padded(to: 4) == "ab  ")
        #expect("abcdef".padded(to: 3) == "abc")
    }

    @Test func lockSerialisesThreads() async {
        final class Counter: @unchecked Sendable { var n = 0 }
        let lock = Lock(), counter = Counter()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { for _ in 0..<10_000 { lock.withLock { counter.n += 1 } } }
            }
        }
        #expect(counter.n == 80_000)
    }

    @Test func startThreadRunsTheBody() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            startThread(name: "outpost-test") { c.resume() }
        }
    }
}

@Suite struct JSONParserDifferentialTests {
    /// Random byte-level mutations of valid documents: the parser must never crash, and must accept
    /// exactly what Foundation's decoder accepts, with the same value. Two refusals are on purpose
    /// and left out: a duplicated member name, and a trailing comma (which RFC 8259 does not allow
    /// and Foundation's decoder lets through).
    @Test func mutatedDocumentsAgreeWithFoundation() throws {
        let seeds = [
            #"{"messages":[{"role":"user","content":"caf\u00e9 \"q\" é"}],"max_tokens":32,"temperature":0.5,"stream":true}"#,
            #"[1, -2.5e-3, 0, true, false, null, "a\\b\/c", {"k": [[], {}]}]"#,
            #"{"key":"00ff","tag":"t","all":false,"n":123456789}"#,
        ].map { Array($0.utf8) }
        let alphabet = Array(#"{}[]:,"\ 0123456789.eE+-tfnulrsa"#.utf8) + [0x00, 0x1F, 0x80, 0xC3, 0xA9, 0xFF]
        var rng = SplitMix64(seed: 0x5EED)
        var accepted = 0, refused = 0
        for _ in 0..<20_000 {
            var doc = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let at = Int.random(in: 0...doc.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0 where at < doc.count: doc.remove(at: at)
                case 1: doc.insert(alphabet.randomElement(using: &rng)!, at: at)
                default: if at < doc.count { doc[at] = alphabet.randomElement(using: &rng)! }
                }
            }
            let ours = try? JSONValue.parse(Data(doc))
            let foundation = try? JSONDecoder().decode(JSONValue.self, from: Data(doc))
            if ours == nil, foundation != nil {
                let reason = (try? JSONValue.parse(Data(doc))).map { _ in "" } ?? refusal(doc)
                if reason.contains("trailing comma") || hasDuplicateMember(Data(doc)) { continue }
            }
            #expect(ours == foundation, "\(String(decoding: doc, as: UTF8.self).debugDescription)")
            if ours == nil { refused += 1 } else { accepted += 1 }
        }
        #expect(accepted > 500 && refused > 500)
    }

    func refusal(_ doc: [UInt8]) -> String {
        do { _ = try JSONValue.parse(Data(doc)); return "" } catch { return error.message }
    }

    /// Whether some object in `data` names a member twice (by the raw text of the names: enough
    /// for these mutations, which do not write \u escapes).
    func hasDuplicateMember(_ data: Data) -> Bool {
        var stack: [(isObject: Bool, names: Set<[UInt8]>, expectingName: Bool)] = []
        var i = 0
        let bytes = Array(data)
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: "\""):
                var j = i + 1
                var name: [UInt8] = []
                while j < bytes.count, bytes[j] != UInt8(ascii: "\"") {
                    if bytes[j] == UInt8(ascii: "\\") { name.append(bytes[j]); j += 1 }
                    if j < bytes.count { name.append(bytes[j]) }
                    j += 1
                }
                if let top = stack.indices.last, stack[top].isObject, stack[top].expectingName {
                    if !stack[top].names.insert(name).inserted { return true }
                    stack[top].expectingName = false
                }
                i = j
            case UInt8(ascii: "{"): stack.append((true, [], true))
            case UInt8(ascii: "["): stack.append((false, [], false))
            case UInt8(ascii: "}"), UInt8(ascii: "]"): if !stack.isEmpty { stack.removeLast() }
            case UInt8(ascii: ","): if let top = stack.indices.last, stack[top].isObject { stack[top].expectingName = true }
            default: break
            }
            i += 1
        }
        return false
    }
}
