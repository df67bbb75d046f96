//! Masking the variable parts of a log message (numbers, ids, hex, addresses) before mining.

/// What a masked token becomes in a template.
pub const WILDCARD: &str = "<*>";

/// Tokens of a message mined at most: a long line's tail rarely tells templates apart.
pub(crate) const MAX_TOKENS: usize = 48;

/// The tokens of `body`'s first line (a stack trace's frames are detail, its first line is the
/// message), split on white space, variable parts masked as [`WILDCARD`].
///
/// A token is variable when it holds a digit (counts, durations, ids, versions, addresses, UUIDs,
/// timestamps) or is a long run of hex digits; `key=value` and `key:value` keep the key and mask
/// the value by the same rule, and quotes or brackets around a token are kept around its mask.
///
/// ```
/// use aiops_analyzer::logs::mask_tokens;
///
/// assert_eq!(
///     mask_tokens("order 4411 failed after 250ms (user=ab12, ip 10.0.0.7)\n  at Pricing.java:42"),
///     ["order", "<*>", "failed", "after", "<*>", "(user=<*>,", "ip", "<*>)"],
/// );
/// ```
pub fn mask_tokens(body: &str) -> Vec<String> {
    let first_line = body
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("");
    first_line
        .split_whitespace()
        .take(MAX_TOKENS)
        .map(mask_token)
        .collect()
}

fn mask_token(token: &str) -> String {
    let is_edge = |c: char| {
        matches!(
            c,
            '(' | ')' | '[' | ']' | '{' | '}' | '"' | '\'' | ',' | ';' | '<' | '>'
        )
    };
    let core = token.trim_matches(is_edge);
    if core.is_empty() || core == WILDCARD {
        return token.to_owned();
    }
    let start = token.find(core).unwrap_or(0);
    let (prefix, suffix) = (&token[..start], &token[start + core.len()..]);
    let masked = match core.find(['=', ':']) {
        Some(at) if at > 0 && at + 1 < core.len() && !is_variable(&core[..at]) => {
            let value = &core[at + 1..];
            if is_variable(value) {
                format!("{}{WILDCARD}", &core[..=at])
            } else {
                core.to_owned()
            }
        }
        _ if is_variable(core) => WILDCARD.to_owned(),
        _ => core.to_owned(),
    };
    format!("{prefix}{masked}{suffix}")
}

/// True for a number, an id, an address, a hex string: anything holding a digit, or eight or
/// more hex digits.
fn is_variable(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_digit())
        || (text.len() >= 8 && text.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_ids_and_addresses_are_masked() {
        assert_eq!(
            mask_tokens("GET /items/123 took 45.2ms trace=4bf92f3577b34da6a3ce929d0e0e4736"),
            ["GET", "<*>", "took", "<*>", "trace=<*>"]
        );
        assert_eq!(
            mask_tokens("peer 192.168.1.20:8080 reset"),
            ["peer", "<*>", "reset"]
        );
        assert_eq!(mask_tokens("request deadbeefcafe"), ["request", "<*>"]);
    }

    #[test]
    fn words_and_keys_stay() {
        assert_eq!(
            mask_tokens("cache miss for key=user, retrying"),
            ["cache", "miss", "for", "key=user,", "retrying"]
        );
        assert_eq!(
            mask_tokens("status:503 from 'pricing'"),
            ["status:<*>", "from", "'pricing'"]
        );
    }

    #[test]
    fn only_the_first_line_is_mined_and_long_lines_are_cut() {
        let trace = "java.lang.NullPointerException: price is null\n\tat a.B.c(B.java:10)";
        assert_eq!(
            mask_tokens(trace),
            ["java.lang.NullPointerException:", "price", "is", "null"]
        );
        let long = "word ".repeat(100);
        assert_eq!(mask_tokens(&long).len(), MAX_TOKENS);
        assert!(mask_tokens("   \n  ").is_empty());
    }
}
