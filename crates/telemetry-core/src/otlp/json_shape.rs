//! The shape of an OTLP JSON body, checked before serde reads it.

/// Checks the shape serde cannot be trusted with, without parsing the body: an OTLP JSON body
/// is an object, and no array holds an array (OTLP's repeated fields hold messages, which are
/// objects, or scalars), since serde reads a message from an array as readily as from an
/// object.
pub(crate) fn json_object(bytes: &[u8]) -> Result<(), String> {
    match bytes.iter().find(|byte| !byte.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(_) => return Err("the request is not a JSON object".to_owned()),
        None => return Err("the body is empty".to_owned()),
    }
    // Containers open around the current byte; strings skipped with their escapes.
    let mut open: Vec<u8> = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for &byte in bytes {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' if open.last() == Some(&b'[') => {
                return Err("an array holds an array where OTLP JSON has messages".to_owned());
            }
            b'[' | b'{' => open.push(byte),
            b']' | b'}' => {
                open.pop();
            }
            _ => {}
        }
    }
    Ok(())
}
