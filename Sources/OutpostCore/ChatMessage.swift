import FoundationEssentials

/// One message of a chat request, in normalised form.
///
/// Normalisation makes requests that differ only in irrelevant ways produce the same cache key:
/// the role is lower-cased and trimmed, line endings become `\n`, and leading and trailing
/// whitespace of the content is removed, and the text is put in Unicode NFC (precomposed) form so
/// that canonically equivalent spellings encode to the same bytes. Nothing else is changed.
public struct ChatMessage: Sendable, Hashable, Codable {
    public let role: String
    public let content: String

    public init(role: String, content: String) {
        self.role = Self.normalise(role: role)
        self.content = Self.normalise(content: content)
    }

    static func normalise(role: String) -> String {
        role.trimmingWhitespace().lowercased()
    }

    static func normalise(content: String) -> String {
        var text = content
        if text.utf8.contains(UInt8(ascii: "\r")) {
            text = text.replacingCRLF()
        }
        return text.trimmingWhitespace().nfc
    }
}

extension String {
    /// Unicode Normalization Form C, by the standard library's own normaliser (the one `==` uses);
    /// ASCII, the common case, is already NFC.
    var nfc: String {
        if utf8.allSatisfy({ $0 < 0x80 }) { return self }
        return String(decoding: _nfcCodeUnits, as: UTF8.self)
    }

    func replacingCRLF() -> String {
        var out = String.UnicodeScalarView()
        var previousWasCR = false
        for scalar in unicodeScalars {
            if scalar == "\r" {
                out.append("\n")
                previousWasCR = true
                continue
            }
            if scalar == "\n" && previousWasCR {
                previousWasCR = false
                continue
            }
            previousWasCR = false
            out.append(scalar)
        }
        return String(out)
    }
}
