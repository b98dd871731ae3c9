//! Where to send the user after sign-in: a same-origin relative path, or `/`.

/// The longest `next` kept; longer ones become `/`.
pub const MAX_NEXT_LEN: usize = 2048;

/// `next` when it is a same-origin relative path, else `"/"`.
///
/// Accepted: an absolute path (`/` then anything) made only of visible ASCII, with no
/// backslash anywhere and not starting with `//`. Refused, with the reason:
///
/// - `https://evil.example`, `javascript:…`: a scheme leaves the origin;
/// - `//evil.example`: a scheme-relative URL names another host;
/// - `/\evil.example` and any `\`: browsers read `\` as `/` in URLs;
/// - tabs, newlines, spaces, other control or non-ASCII characters: browsers strip or
///   normalise some of them before parsing (`/\t/evil.example` is `//evil.example`), so none
///   is accepted;
/// - empty, relative (`me`), or longer than [`MAX_NEXT_LEN`].
///
/// ```
/// use latchkey_oauth::safe_next;
///
/// assert_eq!(safe_next(Some("/devices?tab=2#top")), "/devices?tab=2#top");
/// assert_eq!(safe_next(Some("//evil.example")), "/");
/// assert_eq!(safe_next(Some("https://evil.example")), "/");
/// assert_eq!(safe_next(Some("/\\evil.example")), "/");
/// assert_eq!(safe_next(None), "/");
/// ```
#[must_use]
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path) if is_same_origin_path(path) => path,
        _ => "/",
    }
}

fn is_same_origin_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.first() == Some(&b'/')
        && bytes.get(1) != Some(&b'/')
        && bytes.len() <= MAX_NEXT_LEN
        && bytes.iter().all(|&b| b.is_ascii_graphic() && b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn open_redirects_go_home() {
        for bad in [
            "//evil.example",
            "///evil.example",
            "https://evil.example",
            "http:evil.example",
            "javascript:alert(1)",
            "/\\evil.example",
            "\\\\evil.example",
            "/path\\..\\x",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            " /x",
            "/x y",
            "/caf\u{e9}",
            "/\u{0}x",
            "",
            "me",
            "?x=1",
            "#frag",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        let long = format!("/{}", "a".repeat(MAX_NEXT_LEN));
        assert_eq!(safe_next(Some(&long)), "/");
    }

    #[test]
    fn same_origin_paths_are_kept() {
        for good in [
            "/",
            "/me",
            "/devices?tab=2&x=%2F%2Fnot-a-host#top",
            "/a/b/../c",
            "/%2F%2Fevil.example",
        ] {
            assert_eq!(safe_next(Some(good)), good);
        }
    }

    proptest! {
        /// Whatever is kept is a path on this origin: it starts with one `/` and has no
        /// character a browser could turn into a second one or strip.
        #[test]
        fn whatever_is_kept_stays_on_this_origin(input in ".{0,64}") {
            let kept = safe_next(Some(&input));
            prop_assert!(kept.starts_with('/'));
            prop_assert!(!kept.starts_with("//"));
            prop_assert!(!kept.contains('\\'));
            prop_assert!(kept.bytes().all(|b| b.is_ascii_graphic()));
        }
    }
}
