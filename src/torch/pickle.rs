//! A restricted unpickler for the `data.pkl` record of a `torch.save` checkpoint.
//!
//! It is not Python's unpickler: it knows an explicit subset of opcodes (what protocols 2 to 5
//! emit for a state dict) and resolves `GLOBAL`/`STACK_GLOBAL` only against a fixed allowlist of
//! names, mapped to Rust values. Nothing named in the file is ever looked up, imported or run:
//! `os.system` and every other name outside the list is refused when the opcode is read, before
//! any `REDUCE` could call it. Allowed callables are interpreted here:
//!
//! - `collections.OrderedDict()` builds an empty dict;
//! - `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`
//!   and `_rebuild_tensor_v3(..., hooks, dtype[, metadata])` build a tensor description;
//! - `torch._utils._rebuild_parameter(tensor, requires_grad, hooks)` returns the tensor;
//! - `torch.<X>Storage`, `torch.UntypedStorage` and torch dtypes (`torch.bfloat16`...) are plain
//!   values, used in persistent ids `('storage', torch.FloatStorage, key, location, numel)`.
//!
//! Containers are immutable values shared by reference counting (copied on write), so a memo
//! fetch is cheap. A container changed after it was memoized is therefore not seen changed by a
//! later fetch of that memo slot: `torch.save` never relies on that. Limits bound the nesting
//! depth (values and marks), the stack, the memo and the total of container items built.

use std::collections::HashMap;
use std::rc::Rc;

use crate::dtype::Dtype;
use crate::error::{Error, Result};

/// Bounds on what a `data.pkl` may make the unpickler build.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PickleLimits {
    /// Deepest nesting of containers, and most marks open at once.
    pub(crate) max_depth: usize,
    /// Most values on the stack at once.
    pub(crate) max_stack: usize,
    /// Most memo entries.
    pub(crate) max_memo: usize,
    /// Most container items built in total (copies included).
    pub(crate) max_items: u64,
    /// Most dimensions of one tensor.
    pub(crate) max_rank: usize,
}

/// What kind of storage a persistent id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StorageKind {
    /// A typed legacy storage class (`torch.FloatStorage`...): `numel` counts elements.
    Typed(Dtype),
    /// `torch.UntypedStorage`: `numel` counts bytes.
    Untyped,
}

impl StorageKind {
    /// Bytes per unit of `numel`.
    pub(crate) fn unit_size(self) -> u64 {
        match self {
            StorageKind::Typed(d) => d.byte_size().map_or(1, |s| s as u64),
            StorageKind::Untyped => 1,
        }
    }
}

/// A storage as its persistent id describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StorageRef {
    /// The record name under `data/`.
    pub(crate) key: String,
    /// Typed or untyped.
    pub(crate) kind: StorageKind,
    /// Elements (typed) or bytes (untyped).
    pub(crate) numel: u64,
}

/// A tensor as `_rebuild_tensor_v2/v3` describes it; offsets and strides in elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PickledTensor {
    /// The storage holding the data.
    pub(crate) storage: Rc<StorageRef>,
    /// Element type.
    pub(crate) dtype: Dtype,
    /// First element of the view in the storage.
    pub(crate) offset: u64,
    /// Dimensions.
    pub(crate) shape: Vec<u64>,
    /// Strides.
    pub(crate) strides: Vec<u64>,
}

/// One allowlisted global.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildTensorV3,
    RebuildParameter,
    Storage(StorageKind),
    Dtype(Dtype),
}

/// A value on the unpickler's stack.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    None,
    /// True or False: the reader needs no more than the kind.
    Bool,
    Int(i64),
    /// A float (state dict metadata only): the reader needs no more than the kind.
    Float,
    Str(Rc<str>),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<PickledTensor>),
    Tuple(Rc<Seq>),
    List(Rc<Seq>),
    Dict(Rc<Pairs>),
}

/// Items of a tuple or list, with the nesting depth they make.
#[derive(Debug, Clone, Default)]
pub(crate) struct Seq {
    pub(crate) items: Vec<Value>,
    depth: usize,
}

/// Items of a dict in insertion order, with the nesting depth they make.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pairs {
    pub(crate) items: Vec<(Value, Value)>,
    depth: usize,
}

impl Value {
    /// Containers nested in this value, itself included.
    fn depth(&self) -> usize {
        match self {
            Value::Tuple(s) | Value::List(s) => s.depth,
            Value::Dict(p) => p.depth,
            _ => 0,
        }
    }

    /// What a message calls this kind of value.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool => "bool",
            Value::Int(_) => "int",
            Value::Float => "float",
            Value::Str(_) => "str",
            Value::Global(_) => "global",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
        }
    }
}

/// The allowlist, as it appears in refusals.
const ALLOWED: &str = "collections.OrderedDict, torch._utils._rebuild_tensor_v2, \
                       torch._utils._rebuild_tensor_v3, torch._utils._rebuild_parameter, \
                       torch.<type>Storage, torch.storage.UntypedStorage and torch dtypes";

/// The longest module or name a GLOBAL may spell.
const MAX_GLOBAL_LEN: usize = 256;

/// The allowlisted global `module.name`, if it is one.
fn resolve(module: &str, name: &str) -> Option<Global> {
    let global = match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
        ("torch._utils", "_rebuild_tensor_v3") => Global::RebuildTensorV3,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch" | "torch.storage", "UntypedStorage") => Global::Storage(StorageKind::Untyped),
        ("torch", storage) if storage.ends_with("Storage") => {
            Global::Storage(StorageKind::Typed(storage_dtype(storage)?))
        }
        ("torch", dtype) => Global::Dtype(torch_dtype(dtype)?),
        _ => return None,
    };
    Some(global)
}

/// The dtype of a legacy typed storage class.
fn storage_dtype(class: &str) -> Option<Dtype> {
    Some(match class {
        "DoubleStorage" => Dtype::F64,
        "FloatStorage" => Dtype::F32,
        "HalfStorage" => Dtype::F16,
        "BFloat16Storage" => Dtype::BF16,
        "LongStorage" => Dtype::I64,
        "IntStorage" => Dtype::I32,
        "ShortStorage" => Dtype::I16,
        "CharStorage" => Dtype::I8,
        "ByteStorage" => Dtype::U8,
        "BoolStorage" => Dtype::Bool,
        "ComplexFloatStorage" => Dtype::C64,
        _ => return None,
    })
}

/// The stload dtype of a torch dtype name (`torch.<name>`).
fn torch_dtype(name: &str) -> Option<Dtype> {
    Some(match name {
        "float32" | "float" => Dtype::F32,
        "float64" | "double" => Dtype::F64,
        "float16" | "half" => Dtype::F16,
        "bfloat16" => Dtype::BF16,
        "int64" | "long" => Dtype::I64,
        "int32" | "int" => Dtype::I32,
        "int16" | "short" => Dtype::I16,
        "int8" => Dtype::I8,
        "uint8" => Dtype::U8,
        "uint16" => Dtype::U16,
        "uint32" => Dtype::U32,
        "uint64" => Dtype::U64,
        "bool" => Dtype::Bool,
        "complex64" | "cfloat" => Dtype::C64,
        "float8_e4m3fn" => Dtype::F8E4M3,
        "float8_e5m2" => Dtype::F8E5M2,
        "float8_e4m3fnuz" => Dtype::F8E4M3Fnuz,
        "float8_e5m2fnuz" => Dtype::F8E5M2Fnuz,
        "float8_e8m0fnu" => Dtype::F8E8M0,
        _ => return None,
    })
}

/// Decodes `data` (the bytes of data.pkl); `ctx` prefixes every message (file and record).
pub(crate) fn unpickle(data: &[u8], ctx: &str, limits: PickleLimits) -> Result<Value> {
    Machine {
        data,
        pos: 0,
        op_pos: 0,
        ctx,
        limits,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        items: 0,
    }
    .run()
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of the opcode being run, for messages.
    op_pos: usize,
    ctx: &'a str,
    limits: PickleLimits,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    items: u64,
}

impl Machine<'_> {
    fn run(mut self) -> Result<Value> {
        loop {
            self.op_pos = self.pos;
            let op = self.byte()?;
            match op {
                0x80 => {
                    let proto = self.byte()?;
                    if !(2..=5).contains(&proto) {
                        return Err(self.unsupported(format!("pickle protocol {proto}")));
                    }
                }
                0x95 => {
                    self.take(8)?; // FRAME: a length hint only
                }
                b'.' => return self.pop(),
                b'}' => self.push(Value::Dict(Rc::default()))?,
                b')' => self.push(Value::Tuple(Rc::default()))?,
                b']' => self.push(Value::List(Rc::default()))?,
                b'N' => self.push(Value::None)?,
                0x88 | 0x89 => self.push(Value::Bool)?,
                b'(' => {
                    if self.marks.len() >= self.limits.max_depth {
                        return Err(self.limit(format!(
                            "more than {} marks open at once",
                            self.limits.max_depth
                        )));
                    }
                    self.marks.push(self.stack.len());
                }
                b'K' => {
                    let v = self.byte()?;
                    self.push(Value::Int(i64::from(v)))?;
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.array()?);
                    self.push(Value::Int(i64::from(v)))?;
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.array()?);
                    self.push(Value::Int(i64::from(v)))?;
                }
                0x8a => {
                    let v = self.long1()?;
                    self.push(Value::Int(v))?;
                }
                b'G' => {
                    self.take(8)?;
                    self.push(Value::Float)?;
                }
                b'X' => {
                    let n = u32::from_le_bytes(self.array()?);
                    self.string(u64::from(n))?;
                }
                0x8c => {
                    let n = self.byte()?;
                    self.string(u64::from(n))?;
                }
                0x8d => {
                    let n = u64::from_le_bytes(self.array()?);
                    self.string(n)?;
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push_seq(items)?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let items = self.pop_n(n)?;
                    self.push_seq(items)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(&module, &name)?;
                }
                0x93 => {
                    let name = self.pop_str()?;
                    let module = self.pop_str()?;
                    self.global(&module, &name)?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = self.persistent(&pid)?;
                    self.push(Value::Storage(Rc::new(storage)))?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let result = self.reduce(&func, &args)?;
                    self.push(result)?;
                }
                b'b' => {
                    let _state = self.pop()?;
                    match self.top()? {
                        // OrderedDict's `__dict__` (a state dict's `_metadata`): not needed.
                        Value::Dict(_) => {}
                        other => {
                            let kind = other.kind();
                            return Err(self.unsupported(format!("BUILD on a {kind}")));
                        }
                    }
                }
                b's' => {
                    let pair = self.pop_n(2)?;
                    self.set_items(pair)?;
                }
                b'u' => {
                    let pairs = self.pop_mark()?;
                    self.set_items(pairs)?;
                }
                b'a' => {
                    let item = self.pop_n(1)?;
                    self.append(item)?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b'q' => {
                    let i = self.byte()?;
                    self.put(u32::from(i))?;
                }
                b'r' => {
                    let i = u32::from_le_bytes(self.array()?);
                    self.put(i)?;
                }
                0x94 => {
                    let i = u32::try_from(self.memo.len()).unwrap_or(u32::MAX);
                    self.put(i)?;
                }
                b'h' => {
                    let i = self.byte()?;
                    self.get(u32::from(i))?;
                }
                b'j' => {
                    let i = u32::from_le_bytes(self.array()?);
                    self.get(i)?;
                }
                _ => {
                    return Err(self.unsupported(format!(
                        "opcode 0x{op:02x} ({}): only the opcodes torch.save writes for a state \
                         dict are allowed",
                        opcode_name(op)
                    )))
                }
            }
        }
    }

    // --- messages -------------------------------------------------------------------------

    fn format(&self, what: impl std::fmt::Display) -> Error {
        Error::Format(format!("{}: {what} (at byte {})", self.ctx, self.op_pos))
    }

    fn unsupported(&self, what: impl std::fmt::Display) -> Error {
        Error::Unsupported(format!(
            "{}: refused {what} (at byte {})",
            self.ctx, self.op_pos
        ))
    }

    fn limit(&self, what: impl std::fmt::Display) -> Error {
        Error::Limit(format!("{}: {what} (at byte {})", self.ctx, self.op_pos))
    }

    // --- reading the byte stream ----------------------------------------------------------

    fn take(&mut self, n: u64) -> Result<&[u8]> {
        let left = self.data.len() - self.pos;
        let Some(n) = usize::try_from(n).ok().filter(|&n| n <= left) else {
            return Err(self.format(format!(
                "truncated: an argument of {n} bytes but only {left} bytes are left"
            )));
        };
        let bytes = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8> {
        if self.pos >= self.data.len() {
            return Err(self.format("truncated: the pickle ends without a STOP opcode"));
        }
        let b = self.data[self.pos];
        self.pos += 1;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64)?);
        Ok(out)
    }

    /// LONG1: a little-endian two's complement integer of up to 8 bytes.
    fn long1(&mut self) -> Result<i64> {
        let n = self.byte()?;
        if n > 8 {
            return Err(self.unsupported(format!("an integer of {n} bytes (more than 64 bits)")));
        }
        let bytes = self.take(u64::from(n))?;
        let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
        let mut buf = [if negative { 0xff } else { 0 }; 8];
        buf[..bytes.len()].copy_from_slice(bytes);
        Ok(i64::from_le_bytes(buf))
    }

    fn string(&mut self, n: u64) -> Result<()> {
        let bytes = self.take(n)?;
        let s = std::str::from_utf8(bytes).map_err(|_| ());
        let Ok(s) = s else {
            return Err(self.format("a string that is not valid UTF-8"));
        };
        let value = Value::Str(Rc::from(s));
        self.push(value)
    }

    /// A `\n`-terminated argument of GLOBAL.
    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let window = &rest[..rest.len().min(MAX_GLOBAL_LEN + 1)];
        let Some(end) = window.iter().position(|&b| b == b'\n') else {
            if window.len() == rest.len() {
                return Err(self.format("truncated: a GLOBAL name runs to the end of the pickle"));
            }
            return Err(self.format(format!(
                "a GLOBAL name without a newline in its first {MAX_GLOBAL_LEN} bytes"
            )));
        };
        let text = String::from_utf8_lossy(&window[..end]).into_owned();
        self.pos += end + 1;
        Ok(text)
    }

    // --- the stack ------------------------------------------------------------------------

    fn push(&mut self, v: Value) -> Result<()> {
        if self.stack.len() >= self.limits.max_stack {
            return Err(self.limit(format!(
                "more than {} values on the stack",
                self.limits.max_stack
            )));
        }
        self.stack.push(v);
        Ok(())
    }

    /// The lowest stack index the current mark lets us pop.
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<Value> {
        if self.stack.len() <= self.floor() {
            return Err(self.format("stack underflow"));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.format("stack underflow"))
    }

    fn pop_n(&mut self, n: usize) -> Result<Vec<Value>> {
        if self.stack.len() < self.floor() + n {
            return Err(self.format("stack underflow"));
        }
        Ok(self.stack.split_off(self.stack.len() - n))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let Some(mark) = self.marks.pop() else {
            return Err(self.format("no MARK before an opcode that needs one"));
        };
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }

    fn pop_str(&mut self) -> Result<String> {
        match self.pop()? {
            Value::Str(s) => Ok(s.to_string()),
            other => Err(self.format(format!("STACK_GLOBAL with a {} name", other.kind()))),
        }
    }

    fn top(&self) -> Result<&Value> {
        if self.stack.len() <= self.floor() {
            return Err(self.format("stack underflow"));
        }
        self.stack
            .last()
            .ok_or_else(|| self.format("stack underflow"))
    }

    /// Counts `n` more container items against the limit.
    fn charge(&mut self, n: usize) -> Result<()> {
        self.items = self.items.saturating_add(n as u64);
        if self.items > self.limits.max_items {
            return Err(self.limit(format!(
                "more than {} container items",
                self.limits.max_items
            )));
        }
        Ok(())
    }

    /// Checks the nesting a container at `depth` makes.
    fn check_depth(&self, depth: usize) -> Result<()> {
        if depth > self.limits.max_depth {
            return Err(self.limit(format!(
                "values nested more than {} deep",
                self.limits.max_depth
            )));
        }
        Ok(())
    }

    fn push_seq(&mut self, items: Vec<Value>) -> Result<()> {
        self.charge(items.len())?;
        let depth = 1 + items.iter().map(Value::depth).max().unwrap_or(0);
        self.check_depth(depth)?;
        self.push(Value::Tuple(Rc::new(Seq { items, depth })))
    }

    fn set_items(&mut self, flat: Vec<Value>) -> Result<()> {
        if !flat.len().is_multiple_of(2) {
            return Err(self.format("SETITEMS with an odd number of values"));
        }
        let Value::Dict(mut dict) = self.pop()? else {
            return Err(self.format("SETITEM(S) on something that is not a dict"));
        };
        let copy = if Rc::get_mut(&mut dict).is_some() {
            0
        } else {
            dict.items.len()
        };
        self.charge(copy + flat.len() / 2)?;
        let depth = flat.iter().map(Value::depth).max().unwrap_or(0) + 1;
        self.check_depth(depth)?;
        let target = Rc::make_mut(&mut dict);
        target.depth = target.depth.max(depth);
        let mut it = flat.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            target.items.push((k, v));
        }
        self.push(Value::Dict(dict))
    }

    fn append(&mut self, items: Vec<Value>) -> Result<()> {
        let Value::List(mut list) = self.pop()? else {
            return Err(self.format("APPEND(S) on something that is not a list"));
        };
        let copy = if Rc::get_mut(&mut list).is_some() {
            0
        } else {
            list.items.len()
        };
        self.charge(copy + items.len())?;
        let depth = items.iter().map(Value::depth).max().unwrap_or(0) + 1;
        self.check_depth(depth)?;
        let target = Rc::make_mut(&mut list);
        target.depth = target.depth.max(depth);
        target.items.extend(items);
        self.push(Value::List(list))
    }

    // --- the memo -------------------------------------------------------------------------

    fn put(&mut self, i: u32) -> Result<()> {
        let v = self.top()?.clone();
        if self.memo.len() >= self.limits.max_memo && !self.memo.contains_key(&i) {
            return Err(self.limit(format!("more than {} memo entries", self.limits.max_memo)));
        }
        self.memo.insert(i, v);
        Ok(())
    }

    fn get(&mut self, i: u32) -> Result<()> {
        let Some(v) = self.memo.get(&i).cloned() else {
            return Err(self.format(format!("memo entry {i} fetched before it was stored")));
        };
        self.push(v)
    }

    // --- globals, persistent ids, calls ----------------------------------------------------

    fn global(&mut self, module: &str, name: &str) -> Result<()> {
        match resolve(module, name) {
            Some(g) => self.push(Value::Global(g)),
            None if module == "torch" || module.starts_with("torch.") => {
                Err(self.unsupported(format!(
                    "global {module}.{name}: a torch type or layout stload does not read (only \
                     dense tensors of the stload dtypes are; allowed: {ALLOWED})"
                )))
            }
            None => Err(self.unsupported(format!(
                "global {module}.{name}: only what torch.save writes for a state dict is allowed \
                 ({ALLOWED}); nothing named in the file is ever run"
            ))),
        }
    }

    /// `('storage', storage type, key, location, numel)`.
    fn persistent(&self, pid: &Value) -> Result<StorageRef> {
        let bad = || {
            self.format(format!(
                "persistent id is a {} but must be ('storage', torch.<type>Storage, key, \
                 location, numel)",
                pid.kind()
            ))
        };
        let Value::Tuple(t) = pid else {
            return Err(bad());
        };
        let [Value::Str(tag), Value::Global(Global::Storage(kind)), Value::Str(key), Value::Str(_location), Value::Int(numel)] =
            t.items.as_slice()
        else {
            return Err(bad());
        };
        if &**tag != "storage" {
            return Err(bad());
        }
        let numel = u64::try_from(*numel)
            .map_err(|_| self.format(format!("storage \"{key}\" has a negative size {numel}")))?;
        if key.is_empty() || key.len() > MAX_GLOBAL_LEN {
            return Err(self.format(format!("storage key of {} bytes", key.len())));
        }
        Ok(StorageRef {
            key: key.to_string(),
            kind: *kind,
            numel,
        })
    }

    fn reduce(&self, func: &Value, args: &Value) -> Result<Value> {
        let Value::Global(g) = func else {
            return Err(self.unsupported(format!("REDUCE on a {}", func.kind())));
        };
        let Value::Tuple(args) = args else {
            return Err(self.format(format!("REDUCE with {} arguments", args.kind())));
        };
        let args = args.items.as_slice();
        match g {
            Global::OrderedDict if args.is_empty() => Ok(Value::Dict(Rc::default())),
            Global::OrderedDict => Err(self.unsupported("OrderedDict called with arguments")),
            Global::RebuildTensorV2 | Global::RebuildTensorV3 => {
                self.rebuild(args, *g == Global::RebuildTensorV3)
            }
            Global::RebuildParameter => match args {
                [t @ Value::Tensor(_), Value::Bool, _] => Ok(t.clone()),
                _ => Err(self
                    .format("_rebuild_parameter needs (tensor, requires_grad, hooks) arguments")),
            },
            Global::Storage(_) | Global::Dtype(_) => {
                Err(self.unsupported("a call of a storage type or dtype"))
            }
        }
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`, or
    /// v3 with a dtype after the hooks.
    fn rebuild(&self, args: &[Value], v3: bool) -> Result<Value> {
        let name = if v3 {
            "_rebuild_tensor_v3"
        } else {
            "_rebuild_tensor_v2"
        };
        let fixed = if v3 { 7 } else { 6 };
        if args.len() != fixed && args.len() != fixed + 1 {
            return Err(self.format(format!("{name} with {} arguments", args.len())));
        }
        let Value::Storage(storage) = &args[0] else {
            return Err(self.format(format!(
                "{name}: the first argument is a {} instead of a storage",
                args[0].kind()
            )));
        };
        let offset = self.count(&args[1], name, "storage offset")?;
        let shape = self.dims(&args[2], name, "size")?;
        let strides = self.dims(&args[3], name, "stride")?;
        if shape.len() != strides.len() {
            return Err(self.format(format!(
                "{name}: {} sizes but {} strides",
                shape.len(),
                strides.len()
            )));
        }
        if !matches!(args[4], Value::Bool) {
            return Err(self.format(format!("{name}: requires_grad is not a bool")));
        }
        let dtype = match (v3, storage.kind, &args[fixed - 1]) {
            (false, StorageKind::Typed(d), _) => d,
            (true, _, Value::Global(Global::Dtype(d))) => *d,
            (false, StorageKind::Untyped, _) => {
                return Err(self.format(format!("{name} on an untyped storage")))
            }
            (true, _, other) => {
                return Err(self.format(format!("{name}: the dtype argument is a {}", other.kind())))
            }
        };
        Ok(Value::Tensor(Rc::new(PickledTensor {
            storage: Rc::clone(storage),
            dtype,
            offset,
            shape,
            strides,
        })))
    }

    /// A non-negative int.
    fn count(&self, v: &Value, func: &str, what: &str) -> Result<u64> {
        match v {
            Value::Int(i) => {
                u64::try_from(*i).map_err(|_| self.format(format!("{func}: negative {what} {i}")))
            }
            other => Err(self.format(format!("{func}: the {what} is a {}", other.kind()))),
        }
    }

    /// A tuple of non-negative ints (torch sizes and strides).
    fn dims(&self, v: &Value, func: &str, what: &str) -> Result<Vec<u64>> {
        let Value::Tuple(t) = v else {
            return Err(self.format(format!("{func}: the {what} is a {}", v.kind())));
        };
        if t.items.len() > self.limits.max_rank {
            return Err(self.limit(format!(
                "{func}: {} dimensions, more than {}",
                t.items.len(),
                self.limits.max_rank
            )));
        }
        t.items.iter().map(|d| self.count(d, func, what)).collect()
    }
}

/// The name of a pickle opcode, for refusals.
fn opcode_name(op: u8) -> &'static str {
    match op {
        b'c' => "GLOBAL",
        b'i' => "INST",
        b'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        b'P' => "PERSID",
        b'I' => "INT",
        b'L' => "LONG",
        b'F' => "FLOAT",
        b'S' => "STRING",
        b'V' => "UNICODE",
        b'T' | b'U' | 0x8e => "BINSTRING/BINBYTES",
        b'B' | b'C' => "BINBYTES",
        0x8b => "LONG4",
        0x82..=0x84 => "EXT",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'g' => "GET",
        b'p' => "PUT",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: PickleLimits = PickleLimits {
        max_depth: 8,
        max_stack: 64,
        max_memo: 4,
        max_items: 100,
        max_rank: 4,
    };

    fn run(body: &[u8]) -> Result<Value> {
        let mut data = vec![0x80, 2];
        data.extend_from_slice(body);
        unpickle(&data, "t.pt: data.pkl", LIMITS)
    }

    fn int(body: &[u8]) -> i64 {
        match run(body) {
            Ok(Value::Int(i)) => i,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn integers_decode_like_python() {
        assert_eq!(int(b"K\xff."), 255);
        assert_eq!(int(b"M\xff\xff."), 65535);
        assert_eq!(int(b"J\xff\xff\xff\xff."), -1);
        assert_eq!(int(b"\x8a\x00."), 0);
        assert_eq!(int(b"\x8a\x01\xff."), -1);
        assert_eq!(int(b"\x8a\x02\xff\x00."), 255);
        assert_eq!(int(b"\x8a\x05\x00\x00\x00\x00\x01."), 1 << 32);
        assert_eq!(int(b"\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80."), i64::MIN);
    }

    #[test]
    fn memo_and_containers() {
        // [1, 1] via the memo; dict {'a': (1,)} via SETITEM.
        let Ok(Value::List(l)) = run(b"K\x01q\x01]q\x00(h\x01h\x01e.") else {
            panic!("list");
        };
        assert_eq!(l.items.len(), 2);
        let Ok(Value::Dict(d)) = run(b"}\x8c\x01aK\x01\x85s.") else {
            panic!("dict");
        };
        assert!(matches!(&d.items[..], [(Value::Str(k), Value::Tuple(_))] if &**k == "a"));
    }

    #[test]
    fn refusals_say_what_and_where() {
        let msg = |body: &[u8]| run(body).expect_err("refused").to_string();
        assert!(msg(b"\x80\x06.").contains("pickle protocol 6"));
        assert!(msg(b"0.").contains("opcode 0x30 (POP)"));
        assert!(msg(b"R.").contains("stack underflow"));
        assert!(msg(b"h\x07.").contains("memo entry 7"));
        assert!(msg(b"K\x01").contains("without a STOP"));
        assert!(msg(b"ctorch\nComplexDoubleStorage\n.").contains("torch type or layout"));
        let system = msg(b"cposix\nsystem\n.");
        assert!(system.starts_with("t.pt: data.pkl: refused global posix.system"));
        assert!(system.ends_with("(at byte 2)"), "{system}");
        // Memo limit: 4 entries.
        assert!(msg(b"Nq\x00q\x01q\x02q\x03q\x04.").contains("more than 4 memo entries"));
        // Rank limit: 5 dimensions in a tensor size.
        let mut v2 = b"ctorch._utils\n_rebuild_tensor_v2\n(".to_vec();
        v2.extend_from_slice(b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\n");
        v2.extend_from_slice(b"\x8c\x010\x8c\x03cpuK\x01tQK\x00(K\x01K\x01K\x01K\x01K\x01t");
        v2.extend_from_slice(b"(K\x01K\x01K\x01K\x01K\x01t\x89}tR.");
        assert!(msg(&v2).contains("5 dimensions, more than 4"));
    }
}
