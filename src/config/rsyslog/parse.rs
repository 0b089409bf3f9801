//! Reading rsyslog's configuration language into statements, each with its line: legacy
//! selector lines, property-based filters, `&` continuations, `{ … }` blocks, `$Directives`,
//! and the RainerScript subset (`if … then … else`, `action()`, `module()`, `input()`,
//! `template()`, `stop`). Pure: text in, statements out. What it cannot read becomes an
//! [`Kind::Unsupported`] statement with the reason, never an error that hides the rest.

/// One statement and the line it starts on (1-based).
#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub line: usize,
    pub kind: Kind,
}

/// What a statement is.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// `$Name value` (the name without `$`, as written).
    Directive { name: String, value: String },
    /// `module(...)`, `input(...)`, `global(...)`, `template(...)`: its name (lower case) and
    /// parameters (names lower case).
    Object { name: String, params: Params },
    /// A filter and what runs when it holds.
    Rule { filter: Cond, body: Vec<Stmt> },
    /// An action.
    Action(Action),
    /// `stop` or `~`.
    Stop,
    /// Something outside the subset, with the reason.
    Unsupported(String),
}

/// Parameters of an object, in order; array values are joined with `,`.
pub type Params = Vec<(String, String)>;

/// The value of parameter `name` (lower case) of an object.
pub fn param<'p>(params: &'p Params, name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// An action.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// A legacy action as written: `-/var/log/x;Tmpl`, `@@host:514`, `:omusrmsg:*`, `*`.
    Legacy(String),
    /// `action(...)`.
    Object(Params),
}

/// A filter.
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    /// A legacy selector, `*.*;auth,authpriv.none`, or `prifilt("…")`.
    Selector(String),
    /// A comparison of a property with a value: `:msg, contains, "x"`, `$programname ==
    /// 'x'`, `re_match($msg, 'x')`. `prop` is lower case, without `$`.
    Cmp {
        prop: String,
        op: Op,
        value: String,
        negate: bool,
    },
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    /// A part of an expression outside the subset.
    Unsupported(String),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Contains,
    ContainsI,
    IsEqual,
    StartsWith,
    StartsWithI,
    EndsWith,
    /// POSIX basic regular expression (`regex`).
    Regex,
    /// POSIX extended regular expression (`ereregex`, `re_match`).
    EreRegex,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Reads a whole file.
pub fn parse(text: &str) -> Vec<Stmt> {
    let mut r = Reader { text, pos: 0 };
    r.statements(false)
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

/// RainerScript objects taken as `name(...)` statements.
const OBJECTS: [&str; 12] = [
    "module",
    "input",
    "global",
    "template",
    "main_queue",
    "parser",
    "lookup_table",
    "timezone",
    "include",
    "dyn_stats",
    "percentile_stats",
    "license",
];

impl<'a> Reader<'a> {
    fn line_at(&self, pos: usize) -> usize {
        self.text[..pos.min(self.text.len())].matches('\n').count() + 1
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// Skips white space (newlines too), `#` comments and `/* */` comments.
    fn skip_space(&mut self) {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with('#') {
                self.skip_line();
            } else if let Some(comment) = trimmed.strip_prefix("/*") {
                match comment.find("*/") {
                    Some(end) => self.pos += end + 4,
                    None => self.pos = self.text.len(),
                }
            } else {
                return;
            }
        }
    }

    /// Skips spaces and tabs on this line only.
    fn skip_blanks(&mut self) {
        let rest = self.rest();
        let trimmed = rest.trim_start_matches([' ', '\t']);
        self.pos += rest.len() - trimmed.len();
    }

    /// The rest of this line (without its newline, trimmed), and moves past it.
    fn take_line(&mut self) -> &'a str {
        let rest = self.rest();
        let end = rest.find('\n').unwrap_or(rest.len());
        self.pos += (end + 1).min(rest.len());
        rest[..end].trim()
    }

    fn skip_line(&mut self) {
        self.take_line();
    }

    /// An identifier at the cursor (letters, digits, `_`), without moving.
    fn word(&self) -> &'a str {
        let rest = self.rest();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        &rest[..end]
    }

    fn statements(&mut self, in_block: bool) -> Vec<Stmt> {
        let mut out: Vec<Stmt> = Vec::new();
        loop {
            self.skip_space();
            let Some(c) = self.peek() else {
                if in_block {
                    let line = self.line_at(self.pos);
                    out.push(Stmt {
                        line,
                        kind: Kind::Unsupported("a `{` block is not closed".into()),
                    });
                }
                return out;
            };
            let line = self.line_at(self.pos);
            if c == '}' {
                self.pos += 1;
                if in_block {
                    return out;
                }
                out.push(Stmt {
                    line,
                    kind: Kind::Unsupported("a `}` closes no block".into()),
                });
                continue;
            }
            if c == '&' {
                self.pos += 1;
                let action = self.one_statement(line);
                match out.last_mut() {
                    Some(Stmt {
                        kind: Kind::Rule { body, .. },
                        ..
                    }) => body.push(action),
                    _ => out.push(Stmt {
                        line,
                        kind: Kind::Unsupported("`&` continues no filter line before it".into()),
                    }),
                }
                continue;
            }
            let stmt = if in_block {
                self.one_statement(line)
            } else {
                self.top_statement(line)
            };
            out.push(stmt);
        }
    }

    /// A statement outside a block.
    fn top_statement(&mut self, line: usize) -> Stmt {
        let c = self.peek().unwrap_or(' ');
        if c == '$' {
            self.pos += 1;
            let text = self.take_line();
            let (name, value) = text.split_once([' ', '\t']).unwrap_or((text, ""));
            return Stmt {
                line,
                kind: Kind::Directive {
                    name: name.to_string(),
                    value: value.trim().to_string(),
                },
            };
        }
        if c == ':' && !self.rest().starts_with(":om") {
            return self.property_filter(line);
        }
        let w = self.word();
        if !w.is_empty() && (self.is_keyword(w) || w == "action" || w == "stop") {
            return self.one_statement(line);
        }
        if c == '~' {
            return self.one_statement(line);
        }
        // A legacy selector line: SELECTOR ACTION (or a block); a selector may go on on the
        // next line after a `\`.
        let mut joined = String::new();
        loop {
            let rest = self.rest();
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let part = &rest[..end];
            match part.strip_suffix('\\') {
                Some(p)
                    if rest[end..]
                        .trim_start_matches([' ', '\t'])
                        .starts_with('\n') =>
                {
                    joined.push_str(p);
                    self.pos += end;
                    self.skip_space();
                }
                _ => {
                    joined.push_str(part);
                    self.pos += end;
                    break;
                }
            }
        }
        let selector = joined.as_str();
        let looks_like_selector = selector.contains('.')
            && selector
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ",;.=!*_".contains(c));
        if !looks_like_selector {
            let text = format!("{selector} {}", self.take_line());
            return Stmt {
                line,
                kind: Kind::Unsupported(format!(
                    "`{}` is not a statement logwell reads",
                    text.trim()
                )),
            };
        }
        let selector = selector.to_string();
        let body = self.body(line);
        Stmt {
            line,
            kind: Kind::Rule {
                filter: Cond::Selector(selector),
                body,
            },
        }
    }

    fn is_keyword(&self, w: &str) -> bool {
        matches!(
            w,
            "if" | "ruleset" | "set" | "unset" | "reset" | "call" | "call_indirect" | "foreach"
        ) || (OBJECTS.contains(&w) && self.rest()[w.len()..].trim_start().starts_with('('))
    }

    /// `:prop, [!]op, "value" ACTION`.
    fn property_filter(&mut self, line: usize) -> Stmt {
        let start = self.pos;
        self.pos += 1;
        let rest = self.rest();
        let parsed = (|| {
            let (prop, rest) = rest.split_once(',')?;
            let (op, rest) = rest.split_once(',')?;
            let rest = rest.trim_start();
            let rest = rest.strip_prefix('"')?;
            let (value, used) = legacy_quoted(rest)?;
            Some((prop.trim(), op.trim(), value, rest.len() - used))
        })();
        let Some((prop, op, value, left)) = parsed else {
            self.pos = start;
            let text = self.take_line();
            return Stmt {
                line,
                kind: Kind::Unsupported(format!(
                    "`{text}` is not a property filter (`:property, operation, \"value\"`)"
                )),
            };
        };
        self.pos = self.text.len() - left;
        let (negate, op_name) = match op.strip_prefix('!') {
            Some(o) => (true, o.trim()),
            None => (false, op),
        };
        let filter = match property_op(op_name) {
            // rsyslog refuses these in a property filter (RainerScript has them).
            Some(Op::ContainsI | Op::StartsWithI | Op::EndsWith) => Cond::Unsupported(format!(
                "the operation `{op}`, which rsyslog refuses in a property filter (it has it in `if`)"
            )),
            Some(op) => Cond::Cmp {
                prop: prop.to_ascii_lowercase(),
                op,
                value,
                negate,
            },
            None => Cond::Unsupported(format!("the operation `{op}`")),
        };
        let body = self.body(line);
        Stmt {
            line,
            kind: Kind::Rule { filter, body },
        }
    }

    /// What follows a filter: a `{ … }` block, or one action on the same line.
    fn body(&mut self, line: usize) -> Vec<Stmt> {
        self.skip_blanks();
        if self.peek() == Some('{') {
            self.pos += 1;
            return self.statements(true);
        }
        if matches!(self.peek(), None | Some('\n')) {
            // RainerScript allows the action on the next line.
            self.skip_space();
            if self.peek() == Some('{') {
                self.pos += 1;
                return self.statements(true);
            }
        }
        vec![self.one_statement(line)]
    }

    /// One statement inside a block or after a filter: an action, `stop`, an `if`, or a
    /// legacy action to the end of the line.
    fn one_statement(&mut self, line: usize) -> Stmt {
        self.skip_blanks();
        let line = line.max(self.line_at(self.pos));
        let rest = self.rest();
        if rest.starts_with('~') {
            self.pos += 1;
            return Stmt {
                line,
                kind: Kind::Stop,
            };
        }
        let w = self.word();
        match w {
            "stop" => {
                self.pos += 4;
                return Stmt {
                    line,
                    kind: Kind::Stop,
                };
            }
            "if" => {
                self.pos += 2;
                return self.if_statement(line);
            }
            "action" if rest[6..].trim_start().starts_with('(') => {
                return match self.object_params() {
                    Ok((_, params)) => Stmt {
                        line,
                        kind: Kind::Action(Action::Object(params)),
                    },
                    Err(e) => Stmt {
                        line,
                        kind: Kind::Unsupported(e),
                    },
                };
            }
            "ruleset" => {
                let _ = self.object_params();
                self.skip_space();
                if self.peek() == Some('{') {
                    self.pos += 1;
                    let _ = self.statements(true);
                }
                return Stmt {
                    line,
                    kind: Kind::Unsupported(
                        "rulesets: logwell has one rule list; bind the rules to inputs with `input = [...]`".into(),
                    ),
                };
            }
            "set" | "unset" | "reset" | "call" | "call_indirect" | "foreach" => {
                let text = self.take_line();
                return Stmt {
                    line,
                    kind: Kind::Unsupported(format!("`{text}`: RainerScript `{w}`")),
                };
            }
            _ => {}
        }
        if !w.is_empty() && OBJECTS.contains(&w) && rest[w.len()..].trim_start().starts_with('(') {
            return match self.object_params() {
                Ok((name, params)) => {
                    // A `list` template's body: its parts, not translated (the object says so).
                    let save = self.pos;
                    self.skip_space();
                    if name == "template" && self.peek() == Some('{') {
                        self.skip_block();
                    } else {
                        self.pos = save;
                    }
                    Stmt {
                        line,
                        kind: Kind::Object { name, params },
                    }
                }
                Err(e) => Stmt {
                    line,
                    kind: Kind::Unsupported(e),
                },
            };
        }
        if rest.starts_with(':') && !rest.starts_with(":om") {
            return self.property_filter(line);
        }
        // A legacy action, to the end of the line (or a `}` closing the block on it).
        let text = self.take_line();
        let (text, closes) = match text.strip_suffix('}') {
            Some(t) if !t.contains('{') => (t.trim(), true),
            _ => (text, false),
        };
        if closes {
            // Give the `}` back to the block reader.
            self.pos -= self.text[..self.pos].len() - self.text[..self.pos].trim_end().len();
            self.pos -= 1;
        }
        if text.is_empty() {
            return Stmt {
                line,
                kind: Kind::Unsupported("a filter without an action".into()),
            };
        }
        Stmt {
            line,
            kind: Kind::Action(Action::Legacy(text.to_string())),
        }
    }

    /// `if EXPR then BODY [else BODY]`, after `if`.
    fn if_statement(&mut self, line: usize) -> Stmt {
        let start = self.pos;
        let tokens = match self.expression_tokens() {
            Ok(t) => t,
            Err(e) => {
                self.pos = start;
                self.skip_line();
                return Stmt {
                    line,
                    kind: Kind::Unsupported(e),
                };
            }
        };
        let mut p = ExprParser { tokens, at: 0 };
        let filter = match p.or() {
            Some(c) if p.at == p.tokens.len() => c,
            _ => Cond::Unsupported("this `if` expression".into()),
        };
        let body = self.body(line);
        let save = self.pos;
        self.skip_space();
        if self.word() == "else" {
            self.pos += 4;
            let else_body = self.body(line);
            // Both halves inside a rule that always holds.
            let half = |filter, body| Stmt {
                line,
                kind: Kind::Rule { filter, body },
            };
            let not = Cond::Not(Box::new(filter.clone()));
            return half(
                Cond::Selector("*.*".into()),
                vec![half(filter, body), half(not, else_body)],
            );
        }
        self.pos = save;
        Stmt {
            line,
            kind: Kind::Rule { filter, body },
        }
    }

    /// Skips a `{ … }` block (nested ones too), from its `{`.
    fn skip_block(&mut self) {
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            self.pos += c.len_utf8();
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                '"' | '\'' => {
                    if let Some((_, used)) = quoted_body(self.rest(), c) {
                        self.pos += used;
                    }
                }
                _ => {}
            }
        }
    }

    /// Tokens up to `then` (consumed).
    fn expression_tokens(&mut self) -> Result<Vec<Tok>, String> {
        let mut out = Vec::new();
        loop {
            self.skip_space();
            let rest = self.rest();
            let Some(c) = rest.chars().next() else {
                return Err("an `if` without `then`".into());
            };
            if c == '\'' || c == '"' {
                let (s, used) = quoted_body(&rest[1..], c).ok_or("a string that is not closed")?;
                self.pos += 1 + used;
                out.push(Tok::Str(s));
            } else if c == '$' {
                let end = rest[1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || "!._-".contains(c)))
                    .map_or(rest.len(), |e| e + 1);
                out.push(Tok::Var(rest[1..end].to_ascii_lowercase()));
                self.pos += end;
            } else if c.is_ascii_digit() {
                let end = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len());
                out.push(Tok::Num(rest[..end].to_string()));
                self.pos += end;
            } else if c.is_ascii_alphabetic() || c == '_' {
                let w = self.word();
                self.pos += w.len();
                if w == "then" {
                    return Ok(out);
                }
                out.push(Tok::Word(w.to_ascii_lowercase()));
            } else {
                let two = rest.get(..2).unwrap_or("");
                let op = match two {
                    "==" | "!=" | "<>" | "<=" | ">=" => two,
                    _ => match c {
                        '(' | ')' | ',' | '<' | '>' | '!' => &rest[..1],
                        _ => return Err(format!("`{c}` in an `if` expression")),
                    },
                };
                self.pos += op.len();
                out.push(Tok::Sym(op.to_string()));
            }
        }
    }

    /// `name( key="value" key=["a", "b"] … )`, from the cursor at `name`.
    fn object_params(&mut self) -> Result<(String, Params), String> {
        let name = self.word().to_ascii_lowercase();
        self.pos += name.len();
        self.skip_space();
        if self.peek() != Some('(') {
            return Err(format!("`{name}` without `(`"));
        }
        self.pos += 1;
        let mut params = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                None => return Err(format!("`{name}(` is not closed")),
                Some(')') => {
                    self.pos += 1;
                    return Ok((name, params));
                }
                _ => {}
            }
            let rest = self.rest();
            let end = rest
                .find(|c: char| c == '=' || c.is_whitespace() || c == ')')
                .unwrap_or(rest.len());
            let key = rest[..end].to_ascii_lowercase();
            self.pos += end;
            self.skip_space();
            if self.peek() != Some('=') {
                return Err(format!("`{key}` in `{name}(…)` has no value"));
            }
            self.pos += 1;
            self.skip_space();
            let value = self.param_value()?;
            params.push((key, value));
        }
    }

    fn param_value(&mut self) -> Result<String, String> {
        let rest = self.rest();
        match rest.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let (s, used) = quoted_body(&rest[1..], q).ok_or("a string that is not closed")?;
                self.pos += 1 + used;
                Ok(s)
            }
            Some('[') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_space();
                    match self.peek() {
                        Some(']') => {
                            self.pos += 1;
                            return Ok(items.join(","));
                        }
                        Some(',') => self.pos += 1,
                        None => return Err("an array that is not closed".into()),
                        _ => items.push(self.param_value()?),
                    }
                }
            }
            _ => {
                let end = rest
                    .find(|c: char| c.is_whitespace() || c == ')' || c == ',' || c == ']')
                    .unwrap_or(rest.len());
                if end == 0 {
                    // Found by the fuzzer: `[` then `)` read nothing, forever.
                    return Err("a value is missing".into());
                }
                self.pos += end;
                Ok(rest[..end].to_string())
            }
        }
    }
}

/// The text of a quoted string (after its opening quote) with `\` escapes resolved, and the
/// bytes used, closing quote included.
fn quoted_body(s: &str, quote: char) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Some((out, i + 1));
        }
        if c == '\\' {
            let (_, next) = chars.next()?;
            match next {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                // A backslash before anything else is kept: regexes need theirs.
                c if c == quote || c == '\\' => out.push(c),
                c => {
                    out.push('\\');
                    out.push(c);
                }
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// A property filter's quoted value (after its opening quote), as rsyslog reads it: a
/// backslash takes the next character as it is (`\+` is `+`, `\"` is `"`). The text and the
/// bytes used, closing quote included.
fn legacy_quoted(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\\' => out.push(chars.next()?.1),
            c => out.push(c),
        }
    }
    None
}

fn property_op(name: &str) -> Option<Op> {
    Some(match name.to_ascii_lowercase().as_str() {
        "contains" => Op::Contains,
        "contains_i" => Op::ContainsI,
        "isequal" => Op::IsEqual,
        "startswith" => Op::StartsWith,
        "startswith_i" => Op::StartsWithI,
        "endswith" => Op::EndsWith,
        "regex" => Op::Regex,
        "ereregex" => Op::EreRegex,
        _ => return None,
    })
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Str(String),
    Var(String),
    Num(String),
    Word(String),
    Sym(String),
}

struct ExprParser {
    tokens: Vec<Tok>,
    at: usize,
}

impl ExprParser {
    fn next(&mut self) -> Option<Tok> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn peek_is(&self, t: &Tok) -> bool {
        self.tokens.get(self.at) == Some(t)
    }

    fn or(&mut self) -> Option<Cond> {
        let mut left = self.and()?;
        while self.peek_is(&Tok::Word("or".into())) {
            self.at += 1;
            left = Cond::Or(Box::new(left), Box::new(self.and()?));
        }
        Some(left)
    }

    fn and(&mut self) -> Option<Cond> {
        let mut left = self.not()?;
        while self.peek_is(&Tok::Word("and".into())) {
            self.at += 1;
            left = Cond::And(Box::new(left), Box::new(self.not()?));
        }
        Some(left)
    }

    fn not(&mut self) -> Option<Cond> {
        if self.peek_is(&Tok::Word("not".into())) || self.peek_is(&Tok::Sym("!".into())) {
            self.at += 1;
            return Some(Cond::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Option<Cond> {
        match self.next()? {
            Tok::Sym(s) if s == "(" => {
                let c = self.or()?;
                (self.next()? == Tok::Sym(")".into())).then_some(c)
            }
            Tok::Word(f) if self.peek_is(&Tok::Sym("(".into())) => {
                self.at += 1;
                let mut args = Vec::new();
                loop {
                    match self.next()? {
                        Tok::Sym(s) if s == ")" => break,
                        Tok::Sym(s) if s == "," => {}
                        t => args.push(t),
                    }
                }
                Some(match (f.as_str(), args.as_slice()) {
                    ("prifilt", [Tok::Str(s)]) => Cond::Selector(s.clone()),
                    ("re_match", [Tok::Var(v), Tok::Str(re)]) => Cond::Cmp {
                        prop: v.clone(),
                        op: Op::EreRegex,
                        value: re.clone(),
                        negate: false,
                    },
                    _ => Cond::Unsupported(format!("the function `{f}()`")),
                })
            }
            Tok::Var(prop) => {
                let (op, negate) = match self.next()? {
                    Tok::Sym(s) => match s.as_str() {
                        "==" => (Op::IsEqual, false),
                        "!=" | "<>" => (Op::IsEqual, true),
                        "<" => (Op::Lt, false),
                        "<=" => (Op::Le, false),
                        ">" => (Op::Gt, false),
                        ">=" => (Op::Ge, false),
                        _ => return None,
                    },
                    Tok::Word(w) => (property_op(&w)?, false),
                    _ => return None,
                };
                let value = match self.next()? {
                    Tok::Str(s) | Tok::Num(s) => s,
                    _ => return None,
                };
                Some(Cond::Cmp {
                    prop,
                    op,
                    value,
                    negate,
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(prop: &str, op: Op, value: &str) -> Cond {
        Cond::Cmp {
            prop: prop.into(),
            op,
            value: value.into(),
            negate: false,
        }
    }

    #[test]
    fn legacy_lines_directives_and_continuations() {
        let s = parse(
            "# comment\n$FileOwner root\n*.*;auth,authpriv.none\t\t-/var/log/syslog\n\
             :msg,contains,\"[UFW \" /var/log/ufw.log\n& stop\n",
        );
        assert_eq!(s.len(), 3, "{s:#?}");
        assert_eq!(
            s[0].kind,
            Kind::Directive {
                name: "FileOwner".into(),
                value: "root".into()
            }
        );
        assert_eq!(s[1].line, 3);
        let Kind::Rule { filter, body } = &s[1].kind else {
            panic!("{s:?}")
        };
        assert_eq!(*filter, Cond::Selector("*.*;auth,authpriv.none".into()));
        assert_eq!(
            body[0].kind,
            Kind::Action(Action::Legacy("-/var/log/syslog".into()))
        );
        let Kind::Rule { filter, body } = &s[2].kind else {
            panic!("{s:?}")
        };
        assert_eq!(*filter, cmp("msg", Op::Contains, "[UFW "));
        assert_eq!(body.len(), 2);
        assert_eq!(body[1].kind, Kind::Stop);
        assert_eq!(body[1].line, 5);
    }

    #[test]
    fn property_filter_with_a_block() {
        let s = parse(
            "$AddUnixListenSocket /var/lib/haproxy/dev/log\n\n\
             :programname, startswith, \"haproxy\" {\n  /var/log/haproxy.log\n  stop\n}\n",
        );
        assert_eq!(s.len(), 2, "{s:#?}");
        let Kind::Rule { filter, body } = &s[1].kind else {
            panic!()
        };
        assert_eq!(*filter, cmp("programname", Op::StartsWith, "haproxy"));
        assert_eq!(
            body.iter().map(|b| b.kind.clone()).collect::<Vec<_>>(),
            vec![
                Kind::Action(Action::Legacy("/var/log/haproxy.log".into())),
                Kind::Stop
            ]
        );
    }

    #[test]
    fn rainerscript_if_then_else_and_objects() {
        let s = parse(
            "module(load=\"imudp\")\ninput(type=\"imudp\" port=\"514\")\n\
             if $programname == 'nginx' and not ($msg contains 'health') then {\n\
               action(type=\"omfile\" file=\"/var/log/nginx.log\")\n  stop\n}\n\
             else if re_match($msg, 'a+b') then /var/log/ab.log\n\
             if prifilt(\"mail.*\") or $syslogseverity <= 3 then @@central:514\n",
        );
        assert_eq!(s.len(), 4, "{s:#?}");
        assert_eq!(
            s[1].kind,
            Kind::Object {
                name: "input".into(),
                params: vec![
                    ("type".into(), "imudp".into()),
                    ("port".into(), "514".into())
                ]
            }
        );
        let Kind::Rule { body, .. } = &s[2].kind else {
            panic!()
        };
        assert_eq!(body.len(), 2);
        let Kind::Rule { filter, body: then } = &body[0].kind else {
            panic!()
        };
        assert_eq!(
            *filter,
            Cond::And(
                Box::new(cmp("programname", Op::IsEqual, "nginx")),
                Box::new(Cond::Not(Box::new(cmp("msg", Op::Contains, "health"))))
            )
        );
        assert_eq!(then.len(), 2);
        let Kind::Rule {
            filter,
            body: other,
        } = &body[1].kind
        else {
            panic!()
        };
        assert!(matches!(filter, Cond::Not(_)));
        let Kind::Rule { filter, .. } = &other[0].kind else {
            panic!("{other:?}")
        };
        assert_eq!(*filter, cmp("msg", Op::EreRegex, "a+b"));
        let Kind::Rule { filter, body } = &s[3].kind else {
            panic!()
        };
        assert_eq!(
            *filter,
            Cond::Or(
                Box::new(Cond::Selector("mail.*".into())),
                Box::new(cmp("syslogseverity", Op::Le, "3"))
            )
        );
        assert_eq!(
            body[0].kind,
            Kind::Action(Action::Legacy("@@central:514".into()))
        );
    }

    #[test]
    fn what_is_outside_the_subset_is_a_statement_with_a_reason() {
        let s = parse("ruleset(name=\"r\") {\n *.* /x\n}\nset $.x = 1;\nfoo bar\n");
        assert_eq!(s.len(), 3, "{s:#?}");
        assert!(s.iter().all(|s| matches!(s.kind, Kind::Unsupported(_))));
        assert_eq!(s[2].line, 5);
    }

    #[test]
    fn an_array_without_values_ends() {
        // Found by the fuzzer: this looped, reading empty values.
        let s = parse("action(type=\"omfile\" file=[/x\" mode=\"1\")\n*.* /y\n");
        assert!(matches!(s[0].kind, Kind::Unsupported(_)), "{s:?}");
    }

    #[test]
    fn a_block_closed_on_the_action_line() {
        let s = parse(":programname, isequal, \"x\" { /var/log/x.log }\n*.* /var/log/all\n");
        assert_eq!(s.len(), 2, "{s:#?}");
        let Kind::Rule { body, .. } = &s[0].kind else {
            panic!()
        };
        assert_eq!(
            body[0].kind,
            Kind::Action(Action::Legacy("/var/log/x.log".into()))
        );
    }
}
