/// GPT-2's reversible map between bytes and printable code points, in which byte-level BPE
/// vocabularies store their tokens (`Ġ` for a space, `Ċ` for a newline, …).
enum ByteLevelEncoding {
    /// The code point each byte is written as.
    static let scalarForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt8(b))
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// Each byte's code point as a one-scalar string (the starting symbols of BPE).
    static let stringForByte: [String] = scalarForByte.map { String(Character($0)) }

    /// The byte a code point stands for, or nil when it is not one of the 256.
    static let byteForScalar: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (b, s) in scalarForByte.enumerated() { map[s.value] = UInt8(b) }
        return map
    }()

    /// Encodes raw bytes as their byte-level string.
    static func encode<C: Collection<UInt8>>(_ bytes: C) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(scalarForByte[Int(b)]) }
        return String(s)
    }

    /// Decodes a byte-level token text to its bytes. A code point outside the map is written as
    /// llama.cpp writes it: `[UNK_BYTE_0x<its UTF-8 in hex><token text>]`.
    static func decode(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            if let b = byteForScalar[scalar.value] {
                out.append(b)
            } else {
                out.append(contentsOf: Array("[UNK_BYTE_0x".utf8))
                for b in String(Character(scalar)).utf8 {
                    let hex = String(b, radix: 16)
                    out.append(contentsOf: Array((hex.count == 1 ? "0" + hex : hex).utf8))
                }
                out.append(contentsOf: Array(text.utf8))
                out.append(UInt8(ascii: "]"))
            }
        }
        return out
    }
}
