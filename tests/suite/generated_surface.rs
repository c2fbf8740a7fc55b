//! Snapshot of the public surface build.rs generates from `openapi/gate-stp.yaml`.
//!
//! A change to the fragment (or to progenitor) that changes a method signature, a model's
//! fields, derives or serde attributes, or the operations table fails here until the new
//! snapshot is reviewed (`cargo insta review`, or `INSTA_UPDATE=always cargo test --test
//! suite generated_surface` and read the diff). Bodies and doc comments are left out: they are
//! not surface, and prose edits in the fragment should not need a review here.

use quote::quote;
use syn::{
    Attribute, Expr, ExprStruct, File, ImplItem, Item, ItemConst, Lit, Member, TraitItem,
    Visibility,
};

/// Generated client and models (the file `src/generated.rs` includes).
const CLIENT: &str = include_str!(concat!(env!("OUT_DIR"), "/gate_stp_client.rs"));
/// Generated table of operations.
const OPERATIONS: &str = include_str!(concat!(env!("OUT_DIR"), "/gate_stp_operations.rs"));

fn parse(name: &str, text: &str) -> File {
    syn::parse_file(text).unwrap_or_else(|e| panic!("{name} is not valid Rust: {e}"))
}

/// Attributes that change behaviour (derives, serde), without docs, lints or cfgs.
fn keep_attrs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("derive") || a.path().is_ident("serde"))
        .cloned()
        .collect()
}

fn is_visible(vis: &Visibility) -> bool {
    !matches!(vis, Visibility::Inherited)
}

/// The item as its users see it: no bodies, no docs; `None` when it is private.
fn surface_item(item: &Item) -> Option<Item> {
    match item {
        Item::Use(item) if is_visible(&item.vis) => {
            let mut item = item.clone();
            item.attrs = keep_attrs(&item.attrs);
            Some(Item::Use(item))
        }
        Item::Struct(item) if is_visible(&item.vis) => {
            let mut item = item.clone();
            item.attrs = keep_attrs(&item.attrs);
            for field in item.fields.iter_mut() {
                field.attrs = keep_attrs(&field.attrs);
            }
            Some(Item::Struct(item))
        }
        Item::Enum(item) if is_visible(&item.vis) => {
            let mut item = item.clone();
            item.attrs = keep_attrs(&item.attrs);
            for variant in &mut item.variants {
                variant.attrs = keep_attrs(&variant.attrs);
                for field in variant.fields.iter_mut() {
                    field.attrs = keep_attrs(&field.attrs);
                }
            }
            Some(Item::Enum(item))
        }
        Item::Type(item) if is_visible(&item.vis) => {
            let mut item = item.clone();
            item.attrs = keep_attrs(&item.attrs);
            Some(Item::Type(item))
        }
        Item::Trait(item) if is_visible(&item.vis) => {
            let mut item = item.clone();
            item.attrs.clear();
            for member in &mut item.items {
                if let TraitItem::Fn(f) = member {
                    f.attrs.clear();
                    f.default = None;
                    f.semi_token = Some(Default::default());
                }
            }
            Some(Item::Trait(item))
        }
        Item::Impl(item) => {
            // Inherent impls show their public methods; trait impls show every method.
            let is_trait_impl = item.trait_.is_some();
            let mut item = item.clone();
            item.attrs.clear();
            item.items = item
                .items
                .iter()
                .filter_map(|member| match member {
                    ImplItem::Fn(f) if is_trait_impl || is_visible(&f.vis) => {
                        let (vis, sig) = (&f.vis, &f.sig);
                        Some(ImplItem::Verbatim(quote! { #vis #sig; }))
                    }
                    ImplItem::Const(c) if is_trait_impl || is_visible(&c.vis) => {
                        let mut c = c.clone();
                        c.attrs.clear();
                        Some(ImplItem::Const(c))
                    }
                    ImplItem::Type(t) => {
                        let mut t = t.clone();
                        t.attrs.clear();
                        Some(ImplItem::Type(t))
                    }
                    _ => None,
                })
                .collect();
            (is_trait_impl || !item.items.is_empty()).then_some(Item::Impl(item))
        }
        // `const _: () = { ... }` holds compile-time assertions, such as the one that makes a
        // missing `impl ClientHooks` (the signing hook) a compile error: part of the contract.
        Item::Const(item) if item.ident == "_" => {
            let mut item = item.clone();
            item.attrs.clear();
            Some(Item::Const(item))
        }
        Item::Mod(item) if is_visible(&item.vis) => {
            let mut item = item.clone();
            item.attrs.clear();
            if let Some((_, items)) = &mut item.content {
                *items = items.iter().filter_map(surface_item).collect();
            }
            Some(Item::Mod(item))
        }
        _ => None,
    }
}

fn render_client() -> String {
    let file = parse("gate_stp_client.rs", CLIENT);
    let surface = File {
        shebang: None,
        attrs: Vec::new(),
        items: file.items.iter().filter_map(surface_item).collect(),
    };
    prettyplease::unparse(&surface)
}

/// A literal as plain text (`"GET"` as `GET`); anything else as its tokens.
fn value_text(expr: &Expr) -> String {
    match expr {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Str(s) => s.value(),
            Lit::Bool(b) => b.value.to_string(),
            other => quote!(#other).to_string(),
        },
        other => quote!(#other).to_string(),
    }
}

/// The rows of `OPERATIONS`, each as (field, value) pairs in source order, starting with
/// the name of the const the row refers to.
fn operation_rows(file: &File) -> Vec<Vec<(String, String)>> {
    let consts: Vec<(String, &Expr)> = file
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Const(ItemConst { ident, expr, .. }) => Some((ident.to_string(), &**expr)),
            _ => None,
        })
        .collect();
    let find = |name: &str| {
        consts
            .iter()
            .find(|(ident, _)| ident == name)
            .map(|(_, expr)| *expr)
            .unwrap_or_else(|| panic!("gate_stp_operations.rs defines no const {name}"))
    };
    let Expr::Reference(reference) = find("OPERATIONS") else {
        panic!("OPERATIONS is not `&[...]`");
    };
    let Expr::Array(array) = reference.expr.as_ref() else {
        panic!("OPERATIONS is not `&[...]`");
    };
    array
        .elems
        .iter()
        .map(|row| {
            let Expr::Path(path) = row else {
                panic!("an OPERATIONS row is not a const's name: {}", quote!(#row));
            };
            let name = quote!(#path).to_string();
            let Expr::Struct(ExprStruct { fields, .. }) = find(&name) else {
                panic!("{name} is not a struct literal");
            };
            std::iter::once(("const".to_owned(), name))
                .chain(fields.iter().map(|field| {
                    let field_name = match &field.member {
                        Member::Named(ident) => ident.to_string(),
                        Member::Unnamed(index) => index.index.to_string(),
                    };
                    (field_name, value_text(&field.expr))
                }))
                .collect()
        })
        .collect()
}

fn render_operations() -> String {
    let file = parse("gate_stp_operations.rs", OPERATIONS);
    // The row type, fields and types (crate-visible, so not filtered by visibility).
    let types = File {
        shebang: None,
        attrs: Vec::new(),
        items: file
            .items
            .iter()
            .filter_map(|item| match item {
                Item::Struct(s) => {
                    let mut s = s.clone();
                    s.attrs = keep_attrs(&s.attrs);
                    s.fields.iter_mut().for_each(|f| f.attrs.clear());
                    Some(Item::Struct(s))
                }
                _ => None,
            })
            .collect(),
    };
    let mut out = prettyplease::unparse(&types);

    // OPERATIONS as an aligned table, in the fragment's order.
    let rows = operation_rows(&file);
    let header: Vec<String> = rows
        .first()
        .map(|row| row.iter().map(|(name, _)| name.clone()).collect())
        .unwrap_or_default();
    let mut lines: Vec<Vec<String>> = vec![header.clone()];
    for row in &rows {
        let names: Vec<&String> = row.iter().map(|(name, _)| name).collect();
        assert_eq!(
            names,
            header.iter().collect::<Vec<_>>(),
            "OPERATIONS rows name different fields"
        );
        lines.push(row.iter().map(|(_, value)| value.clone()).collect());
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| lines.iter().map(|line| line[i].len()).max().unwrap_or(0))
        .collect();
    out.push_str("\nOPERATIONS:\n");
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[test]
fn client_surface() {
    insta::with_settings!({
        description => "Public surface of OUT_DIR/gate_stp_client.rs (bodies and docs omitted)",
        omit_expression => true,
    }, {
        insta::assert_snapshot!("client_surface", render_client());
    });
}

#[test]
fn operations_table() {
    insta::with_settings!({
        description => "OUT_DIR/gate_stp_operations.rs: the row type and the OPERATIONS table",
        omit_expression => true,
    }, {
        insta::assert_snapshot!("operations_table", render_operations());
    });
}

/// Guards the rendering itself: every operation of the table shows up as a method.
#[test]
fn every_operation_is_a_client_method() {
    let client = render_client();
    let rows = operation_rows(&parse("gate_stp_operations.rs", OPERATIONS));
    assert!(!rows.is_empty(), "OPERATIONS is empty");
    for row in rows {
        let rust_name = row
            .iter()
            .find(|(name, _)| name == "rust_name")
            .map(|(_, value)| value)
            .expect("OPERATIONS rows have rust_name");
        assert!(
            client.contains(&format!("pub async fn {rust_name}<")),
            "operation {rust_name} is missing from the rendered client surface"
        );
    }
}
