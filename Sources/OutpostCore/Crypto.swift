import CCrypto

// SHA-256 and Ed25519 from OpenSSL's libcrypto, which the agent already loads through libmosquitto.
// Keys are kept as their raw bytes (plain Sendable values); an EVP_PKEY is made per operation,
// which happens once per signed config, never per request.

/// SHA-256, incremental or in one call.
public struct SHA256: ~Copyable {
    public static let byteCount = 32

    /// The algorithm, fetched once: an implicit fetch on every digest costs a lock and a lookup.
    nonisolated(unsafe) private static let md: OpaquePointer = {
        guard let md = EVP_MD_fetch(nil, "SHA256", nil) else { fatalError("libcrypto has no SHA256") }
        return md
    }()

    private let ctx: OpaquePointer

    public init() {
        guard let ctx = EVP_MD_CTX_new(), EVP_DigestInit_ex(ctx, Self.md, nil) == 1 else {
            fatalError("libcrypto: cannot start a SHA-256 digest")
        }
        self.ctx = ctx
    }

    deinit { EVP_MD_CTX_free(ctx) }

    public mutating func update(bufferPointer: UnsafeRawBufferPointer) {
        guard let base = bufferPointer.baseAddress, !bufferPointer.isEmpty else { return }
        EVP_DigestUpdate(ctx, base, bufferPointer.count)
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update(bufferPointer: $0) }
    }

    public consuming func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.byteCount)
        var length: UInt32 = 0
        out.withUnsafeMutableBufferPointer { _ = EVP_DigestFinal_ex(ctx, $0.baseAddress, &length) }
        return out
    }

    /// The digest of `bytes`.
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: byteCount)
        var length: UInt32 = 0
        let ok = out.withUnsafeMutableBufferPointer {
            EVP_Digest(bytes.baseAddress, bytes.count, $0.baseAddress, &length, md, nil)
        }
        precondition(ok == 1 && length == UInt32(byteCount), "libcrypto: SHA-256 failed")
        return out
    }

    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { hash($0) }
    }
}

/// Ed25519 (RFC 8032) keys and signatures.
public enum Ed25519 {
    public static let keyByteCount = 32
    public static let signatureByteCount = 64

    public enum KeyError: Error, Equatable {
        case wrongLength(Int)
        case rejected
    }

    public struct PublicKey: Sendable, Equatable {
        public let rawRepresentation: [UInt8]

        public init(rawRepresentation raw: some Collection<UInt8>) throws(KeyError) {
            let bytes = Array(raw)
            guard bytes.count == keyByteCount else { throw .wrongLength(bytes.count) }
            // Let libcrypto judge the encoding once, so a bad key fails at load, not at every check.
            guard let key = bytes.withUnsafeBufferPointer({
                EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, $0.baseAddress, $0.count)
            }) else { throw .rejected }
            EVP_PKEY_free(key)
            rawRepresentation = bytes
        }

        /// Whether `signature` is this key's signature of `message`.
        public func isValidSignature(_ signature: some Collection<UInt8>, for message: some Collection<UInt8>) -> Bool {
            let signature = Array(signature)
            let message = Array(message)
            guard signature.count == signatureByteCount,
                  let key = rawRepresentation.withUnsafeBufferPointer({
                      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, $0.baseAddress, $0.count)
                  })
            else { return false }
            defer { EVP_PKEY_free(key) }
            guard let ctx = EVP_MD_CTX_new() else { return false }
            defer { EVP_MD_CTX_free(ctx) }
            guard EVP_DigestVerifyInit(ctx, nil, nil, nil, key) == 1 else { return false }
            return signature.withUnsafeBufferPointer { s in
                message.withUnsafeBufferPointer { m in
                    EVP_DigestVerify(ctx, s.baseAddress, s.count, m.baseAddress, m.count) == 1
                }
            }
        }
    }

    public struct PrivateKey: Sendable {
        public let rawRepresentation: [UInt8]
        public let publicKey: PublicKey

        /// A new random key.
        public init() {
            var seed = [UInt8](repeating: 0, count: keyByteCount)
            let ok = seed.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32($0.count)) }
            precondition(ok == 1, "libcrypto: no random bytes for a new key")
            // A 32-byte seed is always a valid Ed25519 private key.
            try! self.init(rawRepresentation: seed)
        }

        public init(rawRepresentation raw: some Collection<UInt8>) throws(KeyError) {
            let bytes = Array(raw)
            guard bytes.count == keyByteCount else { throw .wrongLength(bytes.count) }
            guard let key = bytes.withUnsafeBufferPointer({
                EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, $0.baseAddress, $0.count)
            }) else { throw .rejected }
            defer { EVP_PKEY_free(key) }
            var pub = [UInt8](repeating: 0, count: keyByteCount)
            var length = pub.count
            guard pub.withUnsafeMutableBufferPointer({ EVP_PKEY_get_raw_public_key(key, $0.baseAddress, &length) }) == 1,
                  length == keyByteCount
            else { throw .rejected }
            rawRepresentation = bytes
            publicKey = try PublicKey(rawRepresentation: pub)
        }

        /// The signature of `message` (64 bytes; Ed25519 signatures are deterministic).
        public func signature(for message: some Collection<UInt8>) throws(KeyError) -> [UInt8] {
            let message = Array(message)
            guard let key = rawRepresentation.withUnsafeBufferPointer({
                EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, $0.baseAddress, $0.count)
            }) else { throw .rejected }
            defer { EVP_PKEY_free(key) }
            guard let ctx = EVP_MD_CTX_new() else { throw .rejected }
            defer { EVP_MD_CTX_free(ctx) }
            guard EVP_DigestSignInit(ctx, nil, nil, nil, key) == 1 else { throw .rejected }
            var signature = [UInt8](repeating: 0, count: signatureByteCount)
            var length = signature.count
            let ok = signature.withUnsafeMutableBufferPointer { s in
                message.withUnsafeBufferPointer { m in
                    EVP_DigestSign(ctx, s.baseAddress, &length, m.baseAddress, m.count)
                }
            }
            guard ok == 1, length == signatureByteCount else { throw .rejected }
            return signature
        }
    }
}
