//! `ecoreco_synth(events := N, seed := S, ...)`: the generator as a table
//! function, and `ecoreco.synth(...)` under the extension's qualifier.

use super::text::{format_time, format_uuid, parse_date};
use super::{EventStream, SynthParams};
use crate::binding::{Args, Column, OutputChunk, Param, SqlMacro, SqlType, TableFunction, Value};

/// The catalogue is in memory (about 110 bytes a product): 1.1 GB at most.
/// The real October file has 166,794 products.
const MAX_PRODUCTS: i64 = 10_000_000;

/// The state of one execution: the stream, made on the first fill.
pub enum Generation {
    NotStarted,
    // Boxed: the stream is large and the other states are empty.
    Running(Box<EventStream>),
    Done,
}

/// The bound call of `ecoreco_synth`.
pub struct Synth {
    params: SynthParams,
}

impl TableFunction for Synth {
    type Scan = std::sync::Mutex<Generation>;
    type Cursor = (String, String);
    const NAME: &'static str = "ecoreco_synth";

    fn params() -> Vec<Param> {
        vec![
            Param::named(
                "events",
                SqlType::BigInt,
                Value::Int(100_000),
                "the number of rows to generate, e.g. events := 100000",
            ),
            Param::named(
                "users",
                SqlType::BigInt,
                Value::Int(0),
                "the number of users (0: events / 14, as in the real data)",
            ),
            Param::named(
                "products",
                SqlType::BigInt,
                Value::Int(0),
                "the number of products (0: events / 250, 50 to 200000)",
            ),
            Param::named(
                "days",
                SqlType::BigInt,
                Value::Int(31),
                "the number of days the events span, e.g. days := 31",
            ),
            Param::named(
                "start_date",
                SqlType::Date,
                Value::Text("2019-10-01".into()),
                "the first day, e.g. start_date := DATE '2019-10-01'",
            ),
            Param::named(
                "seed",
                SqlType::BigInt,
                Value::Int(42),
                "any integer seed, e.g. seed := 42",
            ),
        ]
    }

    fn columns() -> Vec<Column> {
        vec![
            Column::new("event_time", SqlType::Varchar),
            Column::new("event_type", SqlType::Varchar),
            Column::new("product_id", SqlType::BigInt),
            Column::new("category_id", SqlType::BigInt),
            Column::new("category_code", SqlType::Varchar),
            Column::new("brand", SqlType::Varchar),
            Column::new("price", SqlType::Double),
            Column::new("user_id", SqlType::BigInt),
            Column::new("user_session", SqlType::Varchar),
        ]
    }

    fn bind(args: &Args) -> anyhow::Result<Self> {
        let events = args.int_in("events", 0, 10_000_000_000)? as u64;
        let mut params = SynthParams::for_events(events, args.int("seed")? as u64);
        let users = args.int_in("users", 0, 1_000_000_000)? as u64;
        if users > 0 {
            params.users = users;
        }
        let products = args.int_in("products", 0, MAX_PRODUCTS)? as u64;
        if products > 0 {
            params.products = products;
        }
        params.days = args.int_in("days", 1, 36_500)? as u32;
        let start = args.text("start_date")?;
        params.start_day = parse_date(start).ok_or_else(|| {
            anyhow::anyhow!("ecoreco_synth: start_date '{start}' is not a date; pass e.g. start_date := DATE '2019-10-01'")
        })?;
        Ok(Synth { params })
    }

    fn cardinality(&self) -> Option<u64> {
        Some(self.params.events)
    }

    fn scan(&self) -> Self::Scan {
        // Built on the first fill, where building can fail with an SQL error.
        std::sync::Mutex::new(Generation::NotStarted)
    }

    fn cursor(&self) -> Self::Cursor {
        (String::with_capacity(32), String::with_capacity(40))
    }

    fn fill(
        &self,
        scan: &Self::Scan,
        cursor: &mut Self::Cursor,
        out: &mut OutputChunk,
    ) -> anyhow::Result<usize> {
        let mut guard = crate::threads::lock(scan);
        if let Generation::NotStarted = *guard {
            *guard = Generation::Running(Box::new(EventStream::new(self.params.clone())?));
        }
        let Generation::Running(stream) = &mut *guard else {
            return Ok(0);
        };
        let (time_text, uuid_text) = cursor;
        let capacity = out.capacity();
        let mut rows = 0;
        let mut cols: Vec<_> = (0..9).map(|c| out.column(c)).collect();
        while rows < capacity {
            let Some(event) = stream.next_event()? else {
                break;
            };
            let product = &stream.catalogue().products[event.product as usize];
            format_time(event.time, time_text);
            cols[0].set_str(rows, time_text);
            cols[1].set_str(rows, event.kind.as_str());
            cols[2].set_i64(rows, product.product_id);
            cols[3].set_i64(rows, product.category_id);
            cols[6].set_f64(rows, product.price);
            cols[7].set_i64(rows, stream.user_id(event.user));
            match product.category_code {
                Some(code) => cols[4].set_str(rows, code),
                None => cols[4].set_null(rows),
            }
            match &product.brand {
                Some(brand) => cols[5].set_str(rows, brand),
                None => cols[5].set_null(rows),
            }
            if event.session == 0 {
                cols[8].set_null(rows);
            } else {
                format_uuid(event.session, uuid_text);
                cols[8].set_str(rows, uuid_text);
            }
            rows += 1;
        }
        if rows == 0 {
            *guard = Generation::Done;
        }
        Ok(rows)
    }
}

/// `ecoreco.synth(...)`: the generator under the extension's qualifier.
pub fn macros() -> Vec<SqlMacro> {
    let params = Synth::params();
    let signature: Vec<String> = params.iter().map(|p| p.macro_signature()).collect();
    let pass: Vec<String> = params
        .iter()
        .map(|p| format!("{0} := {0}", p.name))
        .collect();
    let signature: Vec<&str> = signature.iter().map(|s| s.as_str()).collect();
    vec![SqlMacro::table(
        "synth",
        &signature,
        format!("FROM ecoreco_synth({})", pass.join(", ")),
    )]
}
