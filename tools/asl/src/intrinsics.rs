//! Intrinsic functions for JSONPath `.$` fields: `States.Format('{} {}', $.a, States.ArrayLength($.b))` and the
//! rest of the `States.*` family, with the argument checks and limits AWS documents.
//!
//! A call is tokenized, parsed by recursive descent into a tree of calls, then evaluated against the state input
//! (`$` paths) and the context object (`$$` paths). Every failure, from a syntax error to a path that matches
//! nothing, is a `States.IntrinsicFailure` whose cause names the function and the problem.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::Md5;
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};
use serde_json::{Number, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::StatesError;
use crate::paths;

/// How deeply calls may nest inside one field (the outer call counts as the first level).
const MAX_NESTING: usize = 10;
/// The most items `States.ArrayRange` may produce.
const MAX_RANGE_ITEMS: i128 = 1000;
/// The longest text `States.Base64Encode`, `States.Base64Decode` and `States.Hash` accept, in characters.
const MAX_DATA_CHARS: usize = 10_000;
/// The range `States.MathAdd` accepts for each operand.
const MATH_ADD_RANGE: std::ops::RangeInclusive<i64> = (i32::MIN as i64)..=(i32::MAX as i64);

/// True when a `.$` value is an intrinsic call (starts with `States.`).
pub fn is_intrinsic(text: &str) -> bool {
    text.starts_with("States.")
}

/// Evaluates an intrinsic call such as `States.Format('{} {}', $.a, States.ArrayLength($.b))`;
/// `$` paths read `input`, `$$` paths read `context`.
///
/// `expression` is the field's text after JSON decoding. Any failure (bad syntax, an unknown function, the
/// wrong number or type of arguments, a path that matches nothing, a documented limit) is a
/// `States.IntrinsicFailure`.
pub fn evaluate(expression: &str, input: &Value, context: &Value) -> Result<Value, StatesError> {
    let call = parse(expression)
        .map_err(|problem| StatesError::intrinsic(format!("cannot parse the intrinsic {expression:?}: {problem}")))?;
    call.evaluate(input, context)
}

/// The intrinsic functions AWS defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    Hash,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

impl Function {
    const ALL: [Function; 18] = [
        Function::Format,
        Function::StringToJson,
        Function::JsonToString,
        Function::Array,
        Function::ArrayPartition,
        Function::ArrayContains,
        Function::ArrayRange,
        Function::ArrayGetItem,
        Function::ArrayLength,
        Function::ArrayUnique,
        Function::Base64Encode,
        Function::Base64Decode,
        Function::Hash,
        Function::JsonMerge,
        Function::MathRandom,
        Function::MathAdd,
        Function::StringSplit,
        Function::Uuid,
    ];

    fn named(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|function| function.name() == name)
    }

    fn name(self) -> &'static str {
        match self {
            Function::Format => "States.Format",
            Function::StringToJson => "States.StringToJson",
            Function::JsonToString => "States.JsonToString",
            Function::Array => "States.Array",
            Function::ArrayPartition => "States.ArrayPartition",
            Function::ArrayContains => "States.ArrayContains",
            Function::ArrayRange => "States.ArrayRange",
            Function::ArrayGetItem => "States.ArrayGetItem",
            Function::ArrayLength => "States.ArrayLength",
            Function::ArrayUnique => "States.ArrayUnique",
            Function::Base64Encode => "States.Base64Encode",
            Function::Base64Decode => "States.Base64Decode",
            Function::Hash => "States.Hash",
            Function::JsonMerge => "States.JsonMerge",
            Function::MathRandom => "States.MathRandom",
            Function::MathAdd => "States.MathAdd",
            Function::StringSplit => "States.StringSplit",
            Function::Uuid => "States.UUID",
        }
    }

    /// The fewest and the most arguments the function takes (`None`: no upper bound).
    fn arity(self) -> (usize, Option<usize>) {
        match self {
            Function::Uuid => (0, Some(0)),
            Function::Array => (0, None),
            Function::Format => (1, None),
            Function::StringToJson
            | Function::JsonToString
            | Function::ArrayLength
            | Function::ArrayUnique
            | Function::Base64Encode
            | Function::Base64Decode => (1, Some(1)),
            Function::ArrayPartition
            | Function::ArrayContains
            | Function::ArrayGetItem
            | Function::Hash
            | Function::MathAdd
            | Function::StringSplit => (2, Some(2)),
            Function::MathRandom => (2, Some(3)),
            Function::ArrayRange | Function::JsonMerge => (3, Some(3)),
        }
    }

    fn check_arity(self, count: usize) -> Result<(), String> {
        let (least, most) = self.arity();
        let expected = match most {
            Some(most) if least <= count && count <= most => return Ok(()),
            None if least <= count => return Ok(()),
            Some(most) if most == least => plural(least, "argument"),
            Some(most) => format!("{least} to {most} arguments"),
            None => format!("at least {}", plural(least, "argument")),
        };
        Err(format!("{} takes {expected}, got {count}", self.name()))
    }
}

/// Calls the intrinsic `name` (`States.Hash`, ...) on argument values already evaluated: what
/// JSONata's equivalents (`$hash`, `$partition`, `$range`) run, so both languages agree.
pub fn call(name: &str, arguments: Vec<Value>) -> Result<Value, String> {
    let function = Function::named(name).ok_or_else(|| format!("unknown intrinsic function {name}"))?;
    function.check_arity(arguments.len())?;
    apply(function, arguments)
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 { format!("{count} {noun}") } else { format!("{count} {noun}s") }
}

/// A quoted string literal: its decoded text and where its unescaped `{}` placeholders start (byte offsets), so
/// that `\{\}` stays literal text in a `States.Format` template.
#[derive(Debug, Clone, PartialEq)]
struct Literal {
    text: String,
    placeholders: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    /// `States.Format`, `true`, `false`, `null`.
    Name(String),
    Text(Literal),
    Number(Number),
    /// A `$` or `$$` path, as written.
    Path(String),
    Open,
    Close,
    Comma,
}

impl TokenKind {
    fn describe(&self) -> String {
        match self {
            TokenKind::Name(name) => name.clone(),
            TokenKind::Text(literal) => format!("the string '{}'", literal.text),
            TokenKind::Number(number) => format!("the number {number}"),
            TokenKind::Path(path) => format!("the path {path}"),
            TokenKind::Open => "(".to_owned(),
            TokenKind::Close => ")".to_owned(),
            TokenKind::Comma => ",".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    kind: TokenKind,
    /// Character offset in the expression, for messages.
    at: usize,
}

/// Splits an intrinsic call into tokens.
fn tokenize(expression: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = expression.chars().collect();
    let mut tokens = Vec::new();
    let mut at = 0;
    while let Some(&c) = chars.get(at) {
        let start = at;
        let kind = match c {
            ' ' | '\t' | '\n' | '\r' => {
                at += 1;
                continue;
            }
            '(' => {
                at += 1;
                TokenKind::Open
            }
            ')' => {
                at += 1;
                TokenKind::Close
            }
            ',' => {
                at += 1;
                TokenKind::Comma
            }
            '\'' => {
                let (literal, end) = string_literal(&chars, at)?;
                at = end;
                TokenKind::Text(literal)
            }
            '$' => {
                let end = path_end(&chars, at)?;
                let path: String = chars.get(at..end).unwrap_or_default().iter().collect();
                at = end;
                TokenKind::Path(path.trim_end().to_owned())
            }
            '-' | '0'..='9' => {
                let end = scan(&chars, at, |c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'));
                let text: String = chars.get(at..end).unwrap_or_default().iter().collect();
                let number = serde_json::from_str::<Number>(&text)
                    .map_err(|_| format!("{text:?} at character {at} is not a number"))?;
                at = end;
                TokenKind::Number(number)
            }
            c if c.is_ascii_alphabetic() => {
                let end = scan(&chars, at, |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'));
                let name: String = chars.get(at..end).unwrap_or_default().iter().collect();
                at = end;
                TokenKind::Name(name)
            }
            other => return Err(format!("unexpected {other:?} at character {at}")),
        };
        tokens.push(Token { kind, at: start });
    }
    Ok(tokens)
}

/// The offset just past the run of characters from `from` that satisfy `accept`.
fn scan(chars: &[char], from: usize, accept: impl Fn(char) -> bool) -> usize {
    chars.get(from..).unwrap_or_default().iter().take_while(|c| accept(**c)).count() + from
}

/// Reads the string literal opening at `open` (a `'`), returning it and the offset past its closing quote.
///
/// The escapes are `\'`, `\{`, `\}` and `\\`; any other backslash is an error, as AWS documents.
fn string_literal(chars: &[char], open: usize) -> Result<(Literal, usize), String> {
    let mut text = String::new();
    let mut placeholders = Vec::new();
    let mut at = open + 1;
    loop {
        let Some(&c) = chars.get(at) else {
            return Err(format!("the string opened at character {open} is never closed"));
        };
        at += 1;
        match c {
            '\'' => return Ok((Literal { text, placeholders }, at)),
            '\\' => match chars.get(at) {
                Some(&escaped @ ('\'' | '{' | '}' | '\\')) => {
                    text.push(escaped);
                    at += 1;
                }
                Some(other) => {
                    return Err(format!(
                        "\\{other} at character {} is not an escape (use \\', \\{{, \\}} or \\\\)",
                        at - 1
                    ));
                }
                None => return Err(format!("the string opened at character {open} ends in a lone backslash")),
            },
            '{' if chars.get(at) == Some(&'}') => {
                placeholders.push(text.len());
                text.push_str("{}");
                at += 1;
            }
            other => text.push(other),
        }
    }
}

/// The offset where the path starting at `from` ends: the next `,` or `)` outside brackets, parentheses and
/// quotes (paths may hold filters such as `$.a[?(@.b == 'x, y')]`).
fn path_end(chars: &[char], from: usize) -> Result<usize, String> {
    let mut depth = 0usize;
    let mut quote: Option<(char, usize)> = None;
    let mut at = from;
    while let Some(&c) = chars.get(at) {
        match quote {
            Some((q, _)) if c == q => quote = None,
            Some(_) if c == '\\' => at += 1,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some((c, at)),
                '[' | '(' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                ')' if depth == 0 => return Ok(at),
                ')' => depth -= 1,
                ',' if depth == 0 => return Ok(at),
                _ => {}
            },
        }
        at += 1;
    }
    match quote {
        Some((_, opened)) => Err(format!("the quote at character {opened} in a path is never closed")),
        None => Ok(chars.len()),
    }
}

/// An argument of a call, as written.
#[derive(Debug, Clone, PartialEq)]
enum Argument {
    Text(Literal),
    /// A number, `true`, `false` or `null`.
    Constant(Value),
    Path(String),
    Call(Call),
}

/// A parsed intrinsic call.
#[derive(Debug, Clone, PartialEq)]
struct Call {
    function: Function,
    arguments: Vec<Argument>,
}

/// Parses a whole expression: one call and nothing after it.
fn parse(expression: &str) -> Result<Call, String> {
    let tokens = tokenize(expression)?;
    let mut parser = Parser { tokens, next: 0, length: expression.chars().count() };
    let call = parser.call(1)?;
    match parser.peek() {
        None => Ok(call),
        Some(token) => Err(format!("unexpected {} at character {} after the call", token.kind.describe(), token.at)),
    }
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    /// The expression's length in characters, where "the end" is reported.
    length: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn bump(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).cloned();
        self.next += 1;
        token
    }

    fn unexpected(&self, token: Option<&Token>, wanted: &str) -> String {
        match token {
            Some(token) => format!("expected {wanted} at character {}, found {}", token.at, token.kind.describe()),
            None => format!("expected {wanted} at character {}, found the end", self.length),
        }
    }

    /// `States.Name(argument, ...)`, at nesting level `depth` (1 for the outer call).
    fn call(&mut self, depth: usize) -> Result<Call, String> {
        let token = self.bump();
        let function = match &token {
            Some(Token { kind: TokenKind::Name(name), .. }) if name.starts_with("States.") => {
                Function::named(name).ok_or_else(|| format!("unknown intrinsic function {name}"))?
            }
            other => return Err(self.unexpected(other.as_ref(), "an intrinsic function such as States.Format")),
        };
        match self.bump() {
            Some(Token { kind: TokenKind::Open, .. }) => {}
            other => return Err(self.unexpected(other.as_ref(), &format!("( after {}", function.name()))),
        }
        let mut arguments = Vec::new();
        if matches!(self.peek(), Some(Token { kind: TokenKind::Close, .. })) {
            self.next += 1;
        } else {
            loop {
                arguments.push(self.argument(depth)?);
                match self.bump() {
                    Some(Token { kind: TokenKind::Comma, .. }) => {}
                    Some(Token { kind: TokenKind::Close, .. }) => break,
                    other => return Err(self.unexpected(other.as_ref(), ", or )")),
                }
            }
        }
        function.check_arity(arguments.len())?;
        Ok(Call { function, arguments })
    }

    fn argument(&mut self, depth: usize) -> Result<Argument, String> {
        let Some(token) = self.peek() else { return Err(self.unexpected(None, "an argument")) };
        let argument = match &token.kind {
            TokenKind::Text(literal) => Argument::Text(literal.clone()),
            TokenKind::Number(number) => Argument::Constant(Value::Number(number.clone())),
            TokenKind::Path(path) => Argument::Path(path.clone()),
            TokenKind::Name(name) if name == "true" => Argument::Constant(Value::Bool(true)),
            TokenKind::Name(name) if name == "false" => Argument::Constant(Value::Bool(false)),
            TokenKind::Name(name) if name == "null" => Argument::Constant(Value::Null),
            TokenKind::Name(name) if name.starts_with("States.") => {
                if depth >= MAX_NESTING {
                    return Err(format!("more than {MAX_NESTING} levels of nested intrinsic functions"));
                }
                return self.call(depth + 1).map(Argument::Call);
            }
            _ => return Err(self.unexpected(Some(token), "an argument")),
        };
        self.next += 1;
        Ok(argument)
    }
}

impl Call {
    fn evaluate(&self, input: &Value, context: &Value) -> Result<Value, StatesError> {
        let name = self.function.name();
        let fail = |problem: String| StatesError::intrinsic(format!("{name}: {problem}"));
        if self.function == Function::Format {
            return self.format(input, context);
        }
        let mut values = Vec::with_capacity(self.arguments.len());
        for argument in &self.arguments {
            values.push(argument.evaluate(name, input, context)?);
        }
        apply(self.function, values).map_err(fail)
    }

    /// `States.Format`: the template's placeholders are known from the literal when it is one, so escaped
    /// braces stay text; a template read from a path or a nested call has every `{}` as a placeholder.
    fn format(&self, input: &Value, context: &Value) -> Result<Value, StatesError> {
        let name = self.function.name();
        let fail = |problem: String| StatesError::intrinsic(format!("{name}: {problem}"));
        let Some((template, rest)) = self.arguments.split_first() else {
            return Err(fail("the template argument is missing".to_owned()));
        };
        let (text, placeholders) = match template {
            Argument::Text(literal) => (literal.text.clone(), literal.placeholders.clone()),
            other => match other.evaluate(name, input, context)? {
                Value::String(text) => {
                    let placeholders = text.match_indices("{}").map(|(at, _)| at).collect();
                    (text, placeholders)
                }
                value => return Err(fail(format!("the template must be a string, got {}", paths::kind(&value)))),
            },
        };
        let mut values = Vec::with_capacity(rest.len());
        for argument in rest {
            values.push(argument.evaluate(name, input, context)?);
        }
        fill(&text, &placeholders, &values).map(Value::String).map_err(fail)
    }
}

impl Argument {
    /// The argument's value; `function` names the call it belongs to, for messages.
    fn evaluate(&self, function: &str, input: &Value, context: &Value) -> Result<Value, StatesError> {
        match self {
            Argument::Text(literal) => Ok(Value::String(literal.text.clone())),
            Argument::Constant(value) => Ok(value.clone()),
            Argument::Path(path) => {
                paths::read(path, input, context).map_err(|e| StatesError::intrinsic(format!("{function}: {e}")))
            }
            Argument::Call(call) => call.evaluate(input, context),
        }
    }
}

/// Replaces each placeholder (a byte offset of `{}` in `template`) with the matching value.
fn fill(template: &str, placeholders: &[usize], values: &[Value]) -> Result<String, String> {
    if placeholders.len() != values.len() {
        return Err(format!(
            "the template has {} but {} given",
            plural(placeholders.len(), "placeholder"),
            plural(values.len(), "value")
        ));
    }
    let mut text = String::with_capacity(template.len());
    let mut from = 0;
    for (&at, value) in placeholders.iter().zip(values) {
        text.push_str(template.get(from..at).unwrap_or_default());
        java_text(value, &mut text);
        from = at + 2;
    }
    text.push_str(template.get(from..).unwrap_or_default());
    Ok(text)
}

/// `value` with every -0.0 replaced by the integer 0.
fn without_negative_zero(value: Value) -> Value {
    match value {
        Value::Number(number) if number.as_f64().is_some_and(|f| f == 0.0 && f.is_sign_negative()) => Value::from(0),
        Value::Array(items) => Value::Array(items.into_iter().map(without_negative_zero).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, without_negative_zero(v))).collect()),
        other => other,
    }
}

/// Appends `value` as AWS's `States.Format` prints it: Java's `toString` of the parsed value, so
/// strings bare at any depth, objects as `{a=1, b=[]}` and arrays as `[1, x]`.
fn java_text(value: &Value, out: &mut String) {
    match value {
        Value::String(text) => out.push_str(text),
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                java_text(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (n, (key, item)) in map.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                out.push_str(key);
                out.push('=');
                java_text(item, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Runs a function other than `States.Format` on its evaluated arguments; the error is the problem alone.
fn apply(function: Function, arguments: Vec<Value>) -> Result<Value, String> {
    match function {
        Function::Format => Err("States.Format is evaluated with its template".to_owned()),
        Function::Array => Ok(Value::Array(arguments)),
        Function::StringToJson => {
            let [text] = exactly(arguments)?;
            let text = string(&text, "the argument")?;
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            let parsed = serde_json::from_str(text).map_err(|e| format!("the argument is not JSON text: {e}"))?;
            // serde_json reads the integer `-0` as the float -0.0; AWS (Jackson) reads it as 0.
            let float_zero = text.contains("-0.") || text.contains("-0e") || text.contains("-0E");
            Ok(if float_zero { parsed } else { without_negative_zero(parsed) })
        }
        Function::JsonToString => {
            let [value] = exactly(arguments)?;
            Ok(Value::String(value.to_string()))
        }
        Function::ArrayPartition => {
            let [items, size] = exactly(arguments)?;
            let items = array(&items, "the first argument")?;
            let size = rounded_integer(&size, "the chunk size")?;
            let size = usize::try_from(size)
                .ok()
                .filter(|size| *size > 0)
                .ok_or_else(|| format!("the chunk size must be a positive integer, got {size}"))?;
            Ok(Value::Array(items.chunks(size).map(|chunk| Value::Array(chunk.to_vec())).collect()))
        }
        Function::ArrayContains => {
            let [items, wanted] = exactly(arguments)?;
            let items = array(&items, "the first argument")?;
            let wanted = canonical(&wanted);
            Ok(Value::Bool(items.iter().any(|item| canonical(item) == wanted)))
        }
        Function::ArrayRange => {
            let [start, end, step] = exactly(arguments)?;
            array_range(
                rounded_integer(&start, "the start")?,
                rounded_integer(&end, "the end")?,
                rounded_integer(&step, "the step")?,
            )
        }
        Function::ArrayGetItem => {
            let [items, index] = exactly(arguments)?;
            let items = array(&items, "the first argument")?;
            let index = index
                .as_u64()
                .and_then(|index| usize::try_from(index).ok())
                .ok_or_else(|| format!("the index must be a non-negative integer, got {index}"))?;
            items
                .get(index)
                .cloned()
                .ok_or_else(|| format!("the index {index} is out of range for an array of {}", items.len()))
        }
        Function::ArrayLength => {
            let [items] = exactly(arguments)?;
            Ok(Value::from(array(&items, "the argument")?.len()))
        }
        Function::ArrayUnique => {
            let [items] = exactly(arguments)?;
            let mut seen = HashSet::new();
            let unique = array(&items, "the argument")?.iter().filter(|item| seen.insert(canonical(item))).cloned();
            Ok(Value::Array(unique.collect()))
        }
        Function::Base64Encode => {
            let [data] = exactly(arguments)?;
            let data = limited(string(&data, "the data")?)?;
            Ok(Value::String(BASE64.encode(data.as_bytes())))
        }
        Function::Base64Decode => {
            let [encoded] = exactly(arguments)?;
            let encoded = limited(string(&encoded, "the data")?)?;
            let bytes = BASE64.decode(encoded.as_bytes()).map_err(|e| format!("the argument is not base64: {e}"))?;
            String::from_utf8(bytes).map(Value::String).map_err(|_| "the decoded data is not UTF-8 text".to_owned())
        }
        Function::Hash => {
            let [data, algorithm] = exactly(arguments)?;
            let text = match data {
                Value::String(text) => text,
                other => other.to_string(),
            };
            let data = limited(&text)?.as_bytes();
            let digest = match string(&algorithm, "the algorithm")? {
                "MD5" => hex(&Md5::digest(data)),
                "SHA-1" => hex(&Sha1::digest(data)),
                "SHA-256" => hex(&Sha256::digest(data)),
                "SHA-384" => hex(&Sha384::digest(data)),
                "SHA-512" => hex(&Sha512::digest(data)),
                other => {
                    return Err(format!("unknown algorithm {other:?} (use MD5, SHA-1, SHA-256, SHA-384 or SHA-512)"));
                }
            };
            Ok(Value::String(digest))
        }
        Function::JsonMerge => {
            let [left, right, deep] = exactly(arguments)?;
            match deep {
                Value::Bool(false) => {}
                Value::Bool(true) => {
                    return Err("only shallow merging is supported; the third argument must be false".to_owned());
                }
                other => return Err(format!("the third argument must be false, got {}", paths::kind(&other))),
            }
            let (Value::Object(mut merged), Value::Object(right)) = (left, right) else {
                return Err("the first two arguments must be objects".to_owned());
            };
            merged.extend(right);
            Ok(Value::Object(merged))
        }
        Function::MathRandom => math_random(&arguments),
        Function::MathAdd => {
            let [left, right] = exactly(arguments)?;
            let left = rounded_integer(&left, "the first argument")?;
            let right = rounded_integer(&right, "the second argument")?;
            for operand in [left, right] {
                if !MATH_ADD_RANGE.contains(&operand) {
                    return Err(format!("{operand} is outside the range {} to {}", i32::MIN, i32::MAX));
                }
            }
            Ok(Value::from(left + right))
        }
        Function::StringSplit => {
            let [text, delimiters] = exactly(arguments)?;
            let text = string(&text, "the first argument")?;
            let delimiters = string(&delimiters, "the delimiter")?;
            let pieces = text.split(|c| delimiters.contains(c)).filter(|piece| !piece.is_empty());
            Ok(Value::Array(pieces.map(Value::from).collect()))
        }
        Function::Uuid => {
            let [] = exactly(arguments)?;
            Ok(Value::String(uuid::Uuid::new_v4().to_string()))
        }
    }
}

/// The arguments as a fixed-size array (the parser has already checked the count).
fn exactly<const N: usize>(arguments: Vec<Value>) -> Result<[Value; N], String> {
    let count = arguments.len();
    <[Value; N]>::try_from(arguments).map_err(|_| format!("expected {}, got {count}", plural(N, "argument")))
}

fn string<'a>(value: &'a Value, what: &str) -> Result<&'a str, String> {
    value.as_str().ok_or_else(|| format!("{what} must be a string, got {}", paths::kind(value)))
}

fn array<'a>(value: &'a Value, what: &str) -> Result<&'a [Value], String> {
    value.as_array().map(Vec::as_slice).ok_or_else(|| format!("{what} must be an array, got {}", paths::kind(value)))
}

/// Text of at most [`MAX_DATA_CHARS`] characters.
fn limited(text: &str) -> Result<&str, String> {
    let length = text.chars().count();
    if length > MAX_DATA_CHARS {
        return Err(format!("the data is {length} characters long; the limit is {MAX_DATA_CHARS}"));
    }
    Ok(text)
}

/// An integer argument; AWS rounds a non-integer number to the nearest integer (halves up, as Java's
/// `Math.round` does).
fn rounded_integer(value: &Value, what: &str) -> Result<i64, String> {
    let Value::Number(number) = value else {
        return Err(format!("{what} must be an integer, got {}", paths::kind(value)));
    };
    if let Some(integer) = number.as_i64() {
        return Ok(integer);
    }
    let rounded = number.as_f64().map(|float| (float + 0.5).floor());
    match rounded {
        Some(rounded) if rounded >= i64::MIN as f64 && rounded < i64::MAX as f64 => Ok(rounded as i64),
        _ => Err(format!("{what} {number} is out of range")),
    }
}

/// `start`, `start + step`, ... up to and including `end`; empty when `step` leads away from `end`.
fn array_range(start: i64, end: i64, step: i64) -> Result<Value, String> {
    if step == 0 {
        return Err("the step must not be 0".to_owned());
    }
    let (start, end, step) = (i128::from(start), i128::from(end), i128::from(step));
    let span = end - start;
    let count = if span != 0 && (span > 0) != (step > 0) { 0 } else { span / step + 1 };
    if count > MAX_RANGE_ITEMS {
        return Err(format!("the range has {count} items; the limit is {MAX_RANGE_ITEMS}"));
    }
    let mut items = Vec::new();
    for k in 0..count {
        let item = i64::try_from(start + k * step).map_err(|_| "the range overflows".to_owned())?;
        items.push(Value::from(item));
    }
    Ok(Value::Array(items))
}

/// A random integer in `[start, end)`; with a seed (the third argument) the same one every time.
fn math_random(arguments: &[Value]) -> Result<Value, String> {
    let (start, end, seed) = match arguments {
        [start, end] => (start, end, None),
        [start, end, seed] => (start, end, Some(rounded_integer(seed, "the seed")?)),
        other => return Err(format!("expected 2 or 3 arguments, got {}", other.len())),
    };
    let start = rounded_integer(start, "the start")?;
    let end = rounded_integer(end, "the end")?;
    if start >= end {
        return Err(format!("the start ({start}) must be less than the end ({end})"));
    }
    let value = match seed {
        Some(seed) => pick(&mut StdRng::seed_from_u64(seed.cast_unsigned()), start, end),
        None => pick(&mut rand::rng(), start, end),
    };
    Ok(Value::from(value))
}

fn pick(rng: &mut impl Rng, start: i64, end: i64) -> i64 {
    rng.random_range(start..end)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A text form under which equal JSON values are equal strings (object keys sorted, `1.0` written as `1`),
/// for `States.ArrayContains` and `States.ArrayUnique`.
fn canonical(value: &Value) -> String {
    match value {
        Value::Number(number) => match (number.as_i64(), number.as_u64(), number.as_f64()) {
            (Some(integer), _, _) => integer.to_string(),
            (None, Some(integer), _) => integer.to_string(),
            (None, None, Some(float)) if float.fract() == 0.0 && float.abs() < 9.0e15 => (float as i64).to_string(),
            _ => number.to_string(),
        },
        Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let entries: Vec<String> = entries
                .into_iter()
                .map(|(key, value)| format!("{}:{}", Value::from(key.as_str()), canonical(value)))
                .collect();
            format!("{{{}}}", entries.join(","))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(expression: &str, input: &Value) -> Result<Value, StatesError> {
        evaluate(expression, input, &json!({}))
    }

    /// Asserts an intrinsic failure whose cause contains every fragment.
    fn assert_failure(expression: &str, input: &Value, fragments: &[&str]) {
        let error = run(expression, input).expect_err(expression);
        assert_eq!(error.error, "States.IntrinsicFailure", "{expression}");
        for fragment in fragments {
            assert!(error.cause.contains(fragment), "{expression}: {:?} lacks {fragment:?}", error.cause);
        }
    }

    #[test]
    fn is_intrinsic_recognises_states_calls_only() {
        assert!(is_intrinsic("States.Format('{}', $.a)"));
        assert!(is_intrinsic("States.UUID()"));
        assert!(!is_intrinsic("$.a"));
        assert!(!is_intrinsic("$$.Execution.Id"));
        assert!(!is_intrinsic("States"));
    }

    // The examples from the AWS "Intrinsic functions for JSONPath states" page, with their documented results.

    #[test]
    fn documented_array() {
        assert_eq!(run("States.Array($.Id)", &json!({"Id": 123456})), Ok(json!([123456])));
    }

    #[test]
    fn documented_array_partition() {
        let input = json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]});
        assert_eq!(run("States.ArrayPartition($.inputArray,4)", &input), Ok(json!([[1, 2, 3, 4], [5, 6, 7, 8], [9]])));
    }

    #[test]
    fn documented_array_contains() {
        let input = json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "lookingFor": 5});
        assert_eq!(run("States.ArrayContains($.inputArray, $.lookingFor)", &input), Ok(json!(true)));
    }

    #[test]
    fn documented_array_range() {
        assert_eq!(run("States.ArrayRange(1, 9, 2)", &json!({})), Ok(json!([1, 3, 5, 7, 9])));
    }

    #[test]
    fn documented_array_get_item() {
        let input = json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "index": 5});
        assert_eq!(run("States.ArrayGetItem($.inputArray, $.index)", &input), Ok(json!(6)));
    }

    #[test]
    fn documented_array_length() {
        let input = json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]});
        assert_eq!(run("States.ArrayLength($.inputArray)", &input), Ok(json!(9)));
    }

    #[test]
    fn documented_array_unique() {
        let input = json!({"inputArray": [1, 2, 3, 3, 3, 3, 3, 3, 4]});
        assert_eq!(run("States.ArrayUnique($.inputArray)", &input), Ok(json!([1, 2, 3, 4])));
    }

    #[test]
    fn documented_base64_encode() {
        let input = json!({"input": "Data to encode"});
        assert_eq!(run("States.Base64Encode($.input)", &input), Ok(json!("RGF0YSB0byBlbmNvZGU=")));
    }

    #[test]
    fn documented_base64_decode_round_trips_the_encode_example() {
        // The page shows "Decoded data" as the result, but its input is the encoding of "Data to encode".
        let input = json!({"base64": "RGF0YSB0byBlbmNvZGU="});
        assert_eq!(run("States.Base64Decode($.base64)", &input), Ok(json!("Data to encode")));
    }

    #[test]
    fn documented_hash() {
        // The page prints this digest with one character dropped; this is the real SHA-1 of "input data".
        let input = json!({"Data": "input data", "Algorithm": "SHA-1"});
        assert_eq!(
            run("States.Hash($.Data, $.Algorithm)", &input),
            Ok(json!("aaff4a450a104cd177d28d18d74485e8cae074b7"))
        );
    }

    #[test]
    fn documented_json_merge_is_shallow_and_the_right_wins() {
        let input = json!({
            "json1": {"a": {"a1": 1, "a2": 2}, "b": 2},
            "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}
        });
        assert_eq!(
            run("States.JsonMerge($.json1, $.json2, false)", &input),
            Ok(json!({"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3}))
        );
    }

    #[test]
    fn documented_string_to_json() {
        let input = json!({"escapedJsonString": "{\"foo\": \"bar\"}"});
        assert_eq!(run("States.StringToJson($.escapedJsonString)", &input), Ok(json!({"foo": "bar"})));
    }

    #[test]
    fn documented_json_to_string() {
        let input = json!({"unescapedJson": {"foo": "bar"}});
        assert_eq!(run("States.JsonToString($.unescapedJson)", &input), Ok(json!("{\"foo\":\"bar\"}")));
    }

    #[test]
    fn documented_math_random_stays_in_range() {
        let input = json!({"start": 1, "end": 999});
        for _ in 0..200 {
            let value = run("States.MathRandom($.start, $.end)", &input).expect("random").as_i64().expect("integer");
            assert!((1..999).contains(&value), "{value}");
        }
    }

    #[test]
    fn documented_math_add() {
        let input = json!({"value1": 111, "step": -1});
        assert_eq!(run("States.MathAdd($.value1, $.step)", &input), Ok(json!(110)));
    }

    #[test]
    fn documented_string_split_on_one_delimiter() {
        let input = json!({"inputString": "1,2,3,4,5", "splitter": ","});
        assert_eq!(run("States.StringSplit($.inputString, $.splitter)", &input), Ok(json!(["1", "2", "3", "4", "5"])));
    }

    #[test]
    fn documented_string_split_on_any_of_several_delimiters() {
        let input = json!({"inputString": "This.is+a,test=string", "splitter": ".+,="});
        assert_eq!(
            run("States.StringSplit($.inputString, $.splitter)", &input),
            Ok(json!(["This", "is", "a", "test", "string"]))
        );
    }

    #[test]
    fn documented_uuid_is_a_fresh_v4() {
        let first = run("States.UUID()", &json!({})).expect("uuid");
        let second = run("States.UUID()", &json!({})).expect("uuid");
        let parsed = uuid::Uuid::parse_str(first.as_str().expect("string")).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(first.as_str().map(str::len), Some(36));
        assert_ne!(first, second);
    }

    #[test]
    fn documented_format_with_a_literal_or_a_path_template() {
        let input = json!({"name": "Arnav", "template": "Hello, my name is {}."});
        assert_eq!(
            run("States.Format('Hello, my name is {}.', $.name)", &input),
            Ok(json!("Hello, my name is Arnav."))
        );
        assert_eq!(run("States.Format($.template, $.name)", &input), Ok(json!("Hello, my name is Arnav.")));
    }

    // Beyond the documented examples.

    #[test]
    fn nested_calls_compose() {
        let input =
            json!({"ImageRecipe": {"Arn": "arn:aws:imagebuilder:us-east-1:123456789012:image-recipe/web/2.7.1"}});
        let version = "States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.')";
        let expression =
            format!("States.Format('{{}}.{{}}', States.ArrayGetItem({version}, 0), States.ArrayGetItem({version}, 1))");
        assert_eq!(run(&expression, &input), Ok(json!("2.7")));
        let input = json!({"b": [1, 2, 3], "a": "n"});
        assert_eq!(run("States.Format('{} {}', $.a, States.ArrayLength($.b))", &input), Ok(json!("n 3")));
    }

    #[test]
    fn format_renders_values_as_java_does_not_as_json() {
        // LocalStack snapshot test_format_2: an object argument prints as {Arg1=1, Arg2=[]}.
        let input = json!({"obj": {"Arg1": 1, "Arg2": []}, "list": [1, "x", null, {"k": true}]});
        assert_eq!(
            run("States.Format('{}|{}|{}|{}|{}|{}|{}', 'text', 1, -2.5, true, null, $.obj, $.list)", &input),
            Ok(json!("text|1|-2.5|true|null|{Arg1=1, Arg2=[]}|[1, x, null, {k=true}]"))
        );
    }

    #[test]
    fn format_escapes_keep_reserved_characters_literal() {
        assert_eq!(run(r"States.Format('it\'s \{\} {} \\ done', 'x')", &json!({})), Ok(json!(r"it's {} x \ done")));
        assert_eq!(run(r"States.Format('\{{}\}', 7)", &json!({})), Ok(json!("{7}")));
    }

    #[test]
    fn format_needs_one_value_per_placeholder() {
        assert_failure(
            "States.Format('{} and {}', 'one')",
            &json!({}),
            &["States.Format", "2 placeholders", "1 value"],
        );
        assert_failure("States.Format('none', 'extra')", &json!({}), &["0 placeholders", "1 value"]);
        assert_failure("States.Format($.t)", &json!({"t": 5}), &["template must be a string", "a number"]);
    }

    #[test]
    fn an_unknown_escape_is_a_parse_failure() {
        assert_failure(r"States.Format('line\n{}', 'x')", &json!({}), &["not an escape"]);
    }

    #[test]
    fn paths_may_hold_brackets_quotes_filters_and_the_context() {
        let input = json!({"a,b": 1, "list": [10, 20, 30], "items": [{"n": 1}, {"n": 2}, {"n": 3}], "x y": {"z": "q"}});
        let context = json!({"Execution": {"Id": "arn:exec"}});
        assert_eq!(
            evaluate(
                "States.Array($['a,b'], $.list[0,1], $.items[?(@.n > 1)].n, $['x y'].z , $$.Execution.Id, $)",
                &input,
                &context
            ),
            Ok(json!([1, [10, 20], [2, 3], "q", "arn:exec", input.clone()]))
        );
    }

    #[test]
    fn literals_cover_numbers_booleans_and_null() {
        assert_eq!(
            run("States.Array(0, -7, 2.5, -1e2, true, false, null, '')", &json!({})),
            Ok(json!([0, -7, 2.5, -100.0, true, false, null, ""]))
        );
        assert_eq!(run("States.Array()", &json!({})), Ok(json!([])));
    }

    #[test]
    fn a_path_that_matches_nothing_is_a_failure() {
        assert_failure(
            "States.ArrayLength($.missing)",
            &json!({}),
            &["States.ArrayLength", "$.missing", "matches nothing"],
        );
        assert_failure("States.Format('{}', $$.Nope)", &json!({}), &["States.Format", "$$.Nope"]);
    }

    #[test]
    fn an_unknown_function_is_named() {
        assert_failure("States.Foo(1)", &json!({}), &["unknown intrinsic function States.Foo"]);
        assert_failure("States.Array(States.Bar())", &json!({}), &["States.Bar"]);
    }

    #[test]
    fn wrong_arity_is_a_failure() {
        assert_failure("States.ArrayLength()", &json!({}), &["States.ArrayLength takes 1 argument, got 0"]);
        assert_failure("States.ArrayLength($.a, $.a)", &json!({"a": []}), &["takes 1 argument, got 2"]);
        assert_failure("States.Format()", &json!({}), &["States.Format takes at least 1 argument, got 0"]);
        assert_failure("States.UUID(1)", &json!({}), &["States.UUID takes 0 arguments, got 1"]);
        assert_failure("States.MathRandom(1)", &json!({}), &["takes 2 to 3 arguments, got 1"]);
        assert_failure("States.JsonMerge($.a, $.a)", &json!({"a": {}}), &["takes 3 arguments, got 2"]);
    }

    #[test]
    fn wrong_types_are_failures() {
        let input = json!({"n": 3, "s": "text", "o": {"k": 1}});
        assert_failure("States.ArrayLength($.s)", &input, &["States.ArrayLength", "must be an array", "a string"]);
        assert_failure("States.StringSplit($.n, ',')", &input, &["States.StringSplit", "must be a string"]);
        assert_failure("States.Base64Encode($.o)", &input, &["States.Base64Encode", "an object"]);
        assert_failure("States.JsonMerge($.o, $.s, false)", &input, &["must be objects"]);
        assert_failure("States.JsonMerge($.o, $.o, true)", &input, &["shallow", "must be false"]);
        assert_failure("States.JsonMerge($.o, $.o, 'false')", &input, &["must be false", "a string"]);
        assert_failure("States.MathAdd($.s, 1)", &input, &["States.MathAdd", "must be an integer"]);
        assert_failure("States.ArrayGetItem(States.Array(1), 0.5)", &input, &["non-negative integer"]);
        assert_failure("States.Hash('x', 'SHA-3')", &input, &["unknown algorithm \"SHA-3\""]);
        assert_failure("States.StringToJson($.n)", &input, &["States.StringToJson", "must be a string"]);
    }

    #[test]
    fn array_range_counts_down_and_enforces_its_limits() {
        assert_eq!(run("States.ArrayRange(5, 1, -2)", &json!({})), Ok(json!([5, 3, 1])));
        assert_eq!(run("States.ArrayRange(3, 3, 1)", &json!({})), Ok(json!([3])));
        assert_eq!(run("States.ArrayRange(5, 1, 1)", &json!({})), Ok(json!([])));
        assert_eq!(run("States.ArrayRange(1.4, 2.5, 1)", &json!({})), Ok(json!([1, 2, 3])));
        let thousand = run("States.ArrayRange(1, 1000, 1)", &json!({})).expect("1000 items");
        assert_eq!(thousand.as_array().map(Vec::len), Some(1000));
        assert_failure("States.ArrayRange(1, 1001, 1)", &json!({}), &["States.ArrayRange", "1001 items", "1000"]);
        assert_failure("States.ArrayRange(1, 5, 0)", &json!({}), &["step must not be 0"]);
    }

    #[test]
    fn array_partition_rounds_the_chunk_size_and_needs_it_positive() {
        let input = json!({"a": [1, 2, 3, 4, 5]});
        assert_eq!(run("States.ArrayPartition($.a, 2.4)", &input), Ok(json!([[1, 2], [3, 4], [5]])));
        assert_eq!(run("States.ArrayPartition(States.Array(), 3)", &input), Ok(json!([])));
        assert_failure("States.ArrayPartition($.a, 0)", &input, &["positive integer, got 0"]);
        assert_failure("States.ArrayPartition($.a, -2)", &input, &["positive integer, got -2"]);
    }

    #[test]
    fn array_get_item_out_of_range_is_a_failure() {
        let input = json!({"a": [1, 2, 3]});
        assert_eq!(run("States.ArrayGetItem($.a, 0)", &input), Ok(json!(1)));
        assert_failure("States.ArrayGetItem($.a, 3)", &input, &["index 3 is out of range", "of 3"]);
        assert_failure("States.ArrayGetItem($.a, -1)", &input, &["non-negative integer, got -1"]);
    }

    #[test]
    fn array_unique_and_contains_compare_json_values() {
        let input = json!({"a": ["x", {"k": 1, "j": 2}, 1, "x", {"j": 2, "k": 1}, 1.0, [1], [1], 2]});
        assert_eq!(run("States.ArrayUnique($.a)", &input), Ok(json!(["x", {"k": 1, "j": 2}, 1, [1], 2])));
        let input = json!({"a": [{"k": [1, 2]}], "b": {"k": [1, 2]}, "c": {"k": [2, 1]}});
        assert_eq!(run("States.ArrayContains($.a, $.b)", &input), Ok(json!(true)));
        assert_eq!(run("States.ArrayContains($.a, $.c)", &input), Ok(json!(false)));
    }

    #[test]
    fn base64_rejects_bad_input_non_utf8_and_oversized_data() {
        assert_failure("States.Base64Decode('not base64!')", &json!({}), &["States.Base64Decode", "not base64"]);
        assert_failure("States.Base64Decode('/w==')", &json!({}), &["not UTF-8"]);
        let big = json!({"s": "a".repeat(10_001)});
        assert_failure("States.Base64Encode($.s)", &big, &["10001 characters", "10000"]);
        assert_failure("States.Base64Decode($.s)", &big, &["10001 characters"]);
        let edge = json!({"s": "é".repeat(10_000)});
        assert!(run("States.Base64Encode($.s)", &edge).is_ok_and(|v| v.as_str().is_some_and(|s| s.len() == 26_668)));
    }

    #[test]
    fn hash_supports_every_documented_algorithm() {
        let cases = [
            ("MD5", "900150983cd24fb0d6963f7d28e17f72"),
            ("SHA-256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                "SHA-384",
                "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
            ),
            (
                "SHA-512",
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                 2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            ),
        ];
        for (algorithm, digest) in cases {
            assert_eq!(
                run(&format!("States.Hash('abc', '{algorithm}')"), &json!({})),
                Ok(json!(digest)),
                "{algorithm}"
            );
        }
    }

    #[test]
    fn hash_reads_non_string_data_as_json_text_and_limits_its_size() {
        let input = json!({"o": {"a": 1}, "big": "a".repeat(10_001)});
        assert_eq!(
            run("States.Hash($.o, 'SHA-256')", &input),
            Ok(json!("015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"))
        );
        assert_failure("States.Hash($.big, 'MD5')", &input, &["States.Hash", "10001 characters"]);
    }

    #[test]
    fn string_to_json_of_blank_text_is_null() {
        // LocalStack snapshot test_string_to_json: "" and " " give null.
        assert_eq!(run("States.StringToJson($.t)", &json!({"t": ""})), Ok(Value::Null));
        assert_eq!(run("States.StringToJson($.t)", &json!({"t": "  "})), Ok(Value::Null));
        assert_eq!(run("States.StringToJson($.t)", &json!({"t": "-0"})), Ok(json!(0)));
    }

    #[test]
    fn string_to_json_rejects_text_that_is_not_json() {
        assert_failure("States.StringToJson($.t)", &json!({"t": "{not json"}), &["States.StringToJson", "not JSON"]);
        assert_eq!(run("States.StringToJson($.t)", &json!({"t": " [1, 2] "})), Ok(json!([1, 2])));
    }

    #[test]
    fn math_random_with_a_seed_is_deterministic() {
        let first = run("States.MathRandom(1, 1000000, 42)", &json!({})).expect("seeded");
        for _ in 0..5 {
            assert_eq!(run("States.MathRandom(1, 1000000, 42)", &json!({})), Ok(first.clone()));
        }
        assert!(first.as_i64().is_some_and(|v| (1..1_000_000).contains(&v)));
        assert_eq!(run("States.MathRandom(7, 8)", &json!({})), Ok(json!(7)));
        assert_failure("States.MathRandom(5, 5)", &json!({}), &["States.MathRandom", "less than the end"]);
        assert_failure("States.MathRandom(1, 5, 'seed')", &json!({}), &["the seed must be an integer"]);
    }

    #[test]
    fn math_add_rounds_like_aws_and_checks_the_range() {
        assert_eq!(run("States.MathAdd(1.5, 1)", &json!({})), Ok(json!(3)));
        assert_eq!(run("States.MathAdd(-2.5, 0)", &json!({})), Ok(json!(-2)));
        assert_eq!(run("States.MathAdd(2147483647, 2147483647)", &json!({})), Ok(json!(4294967294_i64)));
        assert_failure("States.MathAdd(2147483648, 1)", &json!({}), &["outside the range"]);
    }

    #[test]
    fn string_split_drops_empty_pieces() {
        assert_eq!(run("States.StringSplit(',a,,b,', ',')", &json!({})), Ok(json!(["a", "b"])));
        assert_eq!(run("States.StringSplit('abc', '')", &json!({})), Ok(json!(["abc"])));
        assert_eq!(run("States.StringSplit('', ',')", &json!({})), Ok(json!([])));
    }

    #[test]
    fn syntax_errors_are_intrinsic_failures() {
        for (expression, fragment) in [
            ("States.Format('open", "never closed"),
            ("States.Array(1", "found the end"),
            ("States.Array(1) extra", "after the call"),
            ("States.Array(1,)", "expected an argument"),
            ("States.Array(1 2)", "expected , or )"),
            ("States.Array", "expected ( after States.Array"),
            ("$.a", "expected an intrinsic function"),
            ("States.Array(maybe)", "found maybe"),
            ("States.Array(1.2.3)", "not a number"),
            ("States.Array($['a)", "never closed"),
            ("States.Array(#)", "unexpected '#'"),
        ] {
            assert_failure(expression, &json!({}), &["cannot parse", fragment]);
        }
    }

    #[test]
    fn nesting_is_limited_to_ten_levels() {
        let nest = |levels: usize| format!("{}1{}", "States.Array(".repeat(levels), ")".repeat(levels));
        let ten = run(&nest(10), &json!({})).expect("ten levels");
        assert_eq!(ten, json!([[[[[[[[[[1]]]]]]]]]]));
        assert_failure(&nest(11), &json!({}), &["more than 10 levels"]);
        assert_failure(&nest(100_000), &json!({}), &["more than 10 levels"]);
    }
}
