//! The `Sec-WebSocket-Extensions` grammar (RFC 6455 §9.1):
//! `1#( token *( ";" token [ "=" ( token / quoted-string ) ] ) )`.

/// One offered extension: its name and parameters (values unquoted), in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Extension {
    pub(crate) name: String,
    pub(crate) params: Vec<(String, Option<String>)>,
}

/// Parses one header value into its extensions. `None` for a value that breaks the
/// grammar: the caller then declines every extension of that header (a bad offer is not
/// worth refusing the connection over).
pub(crate) fn parse(value: &[u8]) -> Option<Vec<Extension>> {
    let mut p = Parser { s: value, at: 0 };
    let mut out = Vec::new();
    loop {
        p.skip_ws();
        if p.eat(b',') {
            continue; // empty list elements are allowed (RFC 9110 §5.6.1)
        }
        if p.done() {
            return Some(out);
        }
        let name = p.token()?;
        let mut params = Vec::new();
        loop {
            p.skip_ws();
            if p.done() || p.eat(b',') {
                break;
            }
            if !p.eat(b';') {
                return None;
            }
            p.skip_ws();
            let key = p.token()?;
            p.skip_ws();
            let value = if p.eat(b'=') {
                p.skip_ws();
                Some(if p.peek() == Some(b'"') {
                    p.quoted()?
                } else {
                    p.token()?
                })
            } else {
                None
            };
            params.push((key, value));
        }
        out.push(Extension { name, params });
    }
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.at >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.at += usize::from(hit);
        hit
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }
    fn token(&mut self) -> Option<String> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        (self.at > start).then(|| String::from_utf8_lossy(&self.s[start..self.at]).into_owned())
    }
    fn quoted(&mut self) -> Option<String> {
        self.at += 1; // the opening quote
        let mut value = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return String::from_utf8(value).ok();
                }
                b'\\' => {
                    value.push(*self.s.get(self.at + 1)?);
                    self.at += 2;
                }
                b => {
                    value.push(b);
                    self.at += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(name: &str, params: &[(&str, Option<&str>)]) -> Extension {
        Extension {
            name: name.into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                .collect(),
        }
    }

    #[test]
    fn lists_params_and_quotes() {
        let v = b"permessage-deflate; client_max_window_bits, permessage-deflate;server_max_window_bits=\"10\" , x-foo";
        assert_eq!(
            parse(v).unwrap(),
            vec![
                ext("permessage-deflate", &[("client_max_window_bits", None)]),
                ext(
                    "permessage-deflate",
                    &[("server_max_window_bits", Some("10"))]
                ),
                ext("x-foo", &[]),
            ]
        );
        assert_eq!(parse(b"").unwrap(), vec![]);
        assert_eq!(parse(b" , ,").unwrap(), vec![]);
    }

    #[test]
    fn broken_grammar_is_none() {
        for bad in [
            &b"permessage-deflate; =1"[..],
            b"a b",
            b"a; b=\"unterminated",
            b"a;",
            b";",
        ] {
            assert_eq!(parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
