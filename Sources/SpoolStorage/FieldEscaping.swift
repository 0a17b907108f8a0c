/// Percent-escaping of one field of a tab-separated metadata line (`client-quotas.meta`,
/// `acls.meta`, `broker-configs.meta`): control characters, space, `%`, DEL and every byte
/// of a non-ASCII character become `%XX`, so a field never holds a tab or a newline and
/// reads back byte for byte.
public enum FieldEscaping {
    public static func escape(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if byte <= 0x20 || byte == 0x25 || byte >= 0x7f {
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            } else {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        return out
    }

    /// The text `escape` made `field` from; nil when an escape is malformed.
    public static func unescape<S: StringProtocol>(_ field: S) -> String? {
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.popFirst() {
            guard byte == 0x25 else { bytes.append(byte); continue }
            guard utf8.count >= 2, let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) else { return nil }
            bytes.append(value)
            utf8 = utf8.dropFirst(2)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
