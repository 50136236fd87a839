//! Code generation for `#[neural_module]`.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};

/// Gives every token of `tokens` the span `span`, so rustc's "required by this bound" note
/// points at the port's declaration rather than at the whole attribute.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|tt| match tt {
            TokenTree::Group(g) => {
                let mut group = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                TokenTree::Group(group)
            }
            mut other => {
                other.set_span(span);
                other
            }
        })
        .collect()
}

use super::ast::Kind;
use super::check::{Model, PortModel, SizeModel};

fn spec(krate: &TokenStream, port: &PortModel) -> TokenStream {
    let name = port.name.to_string();
    let element = &port.element;
    let optional = port.optional;
    let axes = match &port.axes {
        Some(axes) => {
            let specs = axes.iter().map(|a| {
                let marker = &a.marker;
                let size = match &a.size {
                    SizeModel::Free => quote!(#krate::check::SizeSpec::Free),
                    SizeModel::Fixed(n) => quote!(#krate::check::SizeSpec::Fixed(#n)),
                    SizeModel::Config(i, text) => {
                        quote!(#krate::check::SizeSpec::Config(#i, #text))
                    }
                    SizeModel::Symbol(i) => quote!(#krate::check::SizeSpec::Symbol(#i)),
                };
                quote! {
                    #krate::check::AxisSpec {
                        kind: <#marker as #krate::typed::Axis>::KIND,
                        size: #size,
                    }
                }
            });
            quote!(::core::option::Option::Some(&[#(#specs),*]))
        }
        None => quote!(::core::option::Option::None),
    };
    let params = port
        .params
        .iter()
        .map(|(key, index)| quote!(#krate::check::ParamSpec { key: #key, index: #index }));
    quote! {
        #krate::check::PortSpec {
            name: #name,
            axes: #axes,
            element: <#element as #krate::typed::Element>::info,
            params: &[#(#params),*],
            optional: #optional,
        }
    }
}

// One call per side (inputs, outputs); the arguments are that side's names.
#[allow(clippy::too_many_arguments)]
fn tensor_struct(
    krate: &TokenStream,
    vis: &syn::Visibility,
    ident: &syn::Ident,
    doc: &str,
    ports: &[PortModel],
    ports_const: &syn::Ident,
    module_name: &str,
    dir: TokenStream,
) -> TokenStream {
    let fields = ports.iter().map(|p| {
        let name = &p.name;
        let doc = format!("Port `{}`.", p.text);
        if p.optional {
            quote!(#[doc = #doc] pub #name: ::core::option::Option<#krate::__private::Tensor>)
        } else {
            quote!(#[doc = #doc] pub #name: #krate::__private::Tensor)
        }
    });
    let takes = ports.iter().enumerate().map(|(i, p)| {
        let name = &p.name;
        let key = name.to_string();
        if p.optional {
            quote!(let #name = __values.remove(#key);)
        } else {
            quote! {
                let #name = match __values.remove(#key) {
                    ::core::option::Option::Some(t) => t,
                    ::core::option::Option::None => {
                        return ::core::result::Result::Err(
                            #krate::module::port_missing(#module_name, #dir, &#ports_const[#i]),
                        );
                    }
                };
            }
        }
    });
    let names: Vec<_> = ports.iter().map(|p| &p.name).collect();
    let puts = ports.iter().map(|p| {
        let name = &p.name;
        let key = name.to_string();
        if p.optional {
            quote! {
                if let ::core::option::Option::Some(t) = self.#name {
                    __out.insert(::std::string::String::from(#key), t);
                }
            }
        } else {
            quote!(__out.insert(::std::string::String::from(#key), self.#name);)
        }
    });
    quote! {
        #[doc = #doc]
        #[derive(Debug, Clone)]
        #vis struct #ident {
            #(#fields,)*
        }

        const _: () = {
            #[automatically_derived]
            impl #krate::module::TensorStruct for #ident {
                fn from_named(
                    mut __values: #krate::module::NamedTensors,
                ) -> #krate::Result<Self> {
                    #(#takes)*
                    #krate::module::reject_unknown_ports(#module_name, #dir, #ports_const, &__values)?;
                    ::core::result::Result::Ok(#ident { #(#names),* })
                }
                fn into_named(self) -> #krate::module::NamedTensors {
                    let mut __out = #krate::module::NamedTensors::new();
                    #(#puts)*
                    __out
                }
            }
        };
    }
}

fn check_calls(
    krate: &TokenStream,
    ports: &[PortModel],
    var: TokenStream,
    dir: TokenStream,
) -> Vec<TokenStream> {
    ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let name = &p.name;
            if p.optional {
                quote! {
                    if let ::core::option::Option::Some(t) = &#var.#name {
                        __check.port(#dir, &__ports[#i], t, ::core::option::Option::None)?;
                    }
                }
            } else {
                let _ = krate;
                quote!(__check.port(#dir, &__ports[#i], &#var.#name, ::core::option::Option::None)?;)
            }
        })
        .collect()
}

/// Generates the module's items. With `fallback` (the attribute had errors) the typed call's body
/// is `unreachable!` so it needs no `Forward`, and users of the module see only the macro's errors.
pub(crate) fn expand(item: &syn::DeriveInput, model: &Model, fallback: bool) -> TokenStream {
    let krate = &model.krate;
    let ident = &item.ident;
    let vis = &item.vis;
    let module_name = ident.to_string();
    let (impl_generics, ty_generics, where_clause) = item.generics.split_for_impl();

    let inputs_ident = format_ident!("{}Inputs", ident);
    let outputs_ident = format_ident!("{}Outputs", ident);
    let handles_ident = format_ident!("{}Handles", ident);
    let in_tensors = format_ident!("{}InputTensors", ident);
    let out_tensors = format_ident!("{}OutputTensors", ident);
    let ports_mod = format_ident!("{}_ports", snake_case(&module_name));
    let in_const = format_ident!("__NEMO_INPUTS_{}", ident);
    let out_const = format_ident!("__NEMO_OUTPUTS_{}", ident);
    let input_dir = quote!(#krate::check::Direction::Input);
    let output_dir = quote!(#krate::check::Direction::Output);

    let in_specs = model.inputs.iter().map(|p| spec(krate, p));
    let out_specs = model.outputs.iter().map(|p| spec(krate, p));
    let symbols = &model.symbols;
    let sizes = model
        .config_sizes
        .iter()
        .enumerate()
        .map(|(i, v)| quote!(__c.sizes[#i] = #v;));
    let params = model
        .config_params
        .iter()
        .enumerate()
        .map(|(i, v)| quote!(__c.params[#i] = #v;));
    let kind = match model.kind {
        Kind::Module => quote!(#krate::module::ModuleKind::Module),
        Kind::DataLayer => quote!(#krate::module::ModuleKind::DataLayer),
        Kind::Loss => quote!(#krate::module::ModuleKind::Loss),
    };

    let describe = |ports: &[PortModel]| {
        ports
            .iter()
            .map(|p| format!("* `{}`", p.text))
            .collect::<Vec<_>>()
            .join("\n")
    };

    let out_fields = model.outputs.iter().map(|p| {
        let name = &p.name;
        let axes = p.axes_tuple();
        let element = &p.element;
        let doc = format!("Port `{}`.", p.text);
        let ty = quote!(#krate::typed::NTensor<#axes, #element>);
        if p.optional {
            quote!(#[doc = #doc] pub #name: ::core::option::Option<#ty>)
        } else {
            quote!(#[doc = #doc] pub #name: #ty)
        }
    });
    let outputs_doc = format!(
        "Typed outputs of [`{module_name}`].\n\n{}",
        describe(&model.outputs)
    );
    let wrap_outputs = model.outputs.iter().enumerate().map(|(i, p)| {
        let name = &p.name;
        let wrap = quote! {
            #krate::typed::NTensor::from_checked(
                t,
                __out_ports[#i].element_type(&__cfg).map(::std::sync::Arc::new),
            )
        };
        if p.optional {
            quote!(#name: __raw.#name.map(|t| #wrap))
        } else {
            quote!(#name: { let t = __raw.#name; #wrap })
        }
    });
    let wrap_outputs: Vec<_> = wrap_outputs.collect();

    let in_struct = if model.kind == Kind::DataLayer {
        quote!()
    } else {
        tensor_struct(
            krate,
            vis,
            &in_tensors,
            &format!("Plain-tensor inputs of [`{module_name}`], for its `Forward` implementation."),
            &model.inputs,
            &in_const,
            &module_name,
            input_dir.clone(),
        )
    };
    let out_struct = tensor_struct(
        krate,
        vis,
        &out_tensors,
        &format!("Plain-tensor outputs of [`{module_name}`], for its `Forward` implementation."),
        &model.outputs,
        &out_const,
        &module_name,
        output_dir.clone(),
    );
    let in_tensors_ty = if model.kind == Kind::DataLayer {
        quote!(())
    } else {
        quote!(#in_tensors)
    };
    let check_in = check_calls(krate, &model.inputs, quote!(__x), input_dir.clone());
    let check_out = check_calls(krate, &model.outputs, quote!(__y), output_dir.clone());

    let handle_fields = model.outputs.iter().map(|p| {
        let name = &p.name;
        let axes = p.axes_tuple();
        let element = &p.element;
        let doc = format!("Port `{}`, symbolic.", p.text);
        quote!(#[doc = #doc] pub #name: #krate::dag::Handle<#axes, #element>)
    });
    let handles_doc = format!(
        "Symbolic outputs of a lazy call of [`{module_name}`], one graph handle per output port (an optional port that is not produced fails when the graph runs).\n\n{}",
        describe(&model.outputs)
    );
    let take_handles: Vec<_> = model
        .outputs
        .iter()
        .map(|p| {
            let name = &p.name;
            let key = name.to_string();
            quote!(#name: __out.take(#key)?)
        })
        .collect();
    let data_call_doc = format!(
        "Adds this data layer to `graph` as a node and returns one symbolic handle per output port; the graph's actions feed it batch by batch through its `DataLayer` implementation.\n\n# Outputs\n{}",
        describe(&model.outputs)
    );

    // The typed call (modules and losses) or the checked wrapper (data layers).
    let typed = if model.kind == Kind::DataLayer {
        let doc = format!(
            "Checks plain output tensors against the ports of [`{module_name}`] and returns them typed."
        );
        quote! {
            #[automatically_derived]
            impl #impl_generics #ident #ty_generics #where_clause {
                #[doc = #doc]
                #vis fn wrap_outputs(&self, __raw: #out_tensors) -> #krate::Result<#outputs_ident> {
                    let __cfg = <Self as #krate::module::NeuralModule>::port_config(self);
                    let mut __check = #krate::check::CallCheck::new(
                        <Self as #krate::module::NeuralModule>::NAME,
                        <Self as #krate::module::NeuralModule>::symbols(),
                        &__cfg,
                    );
                    if __check.active() {
                        <Self as #krate::module::NeuralModule>::check_outputs(self, &mut __check, &__raw)?;
                    }
                    let __out_ports = <Self as #krate::module::NeuralModule>::output_ports();
                    ::core::result::Result::Ok(#outputs_ident { #(#wrap_outputs,)* })
                }

                #[doc = #data_call_doc]
                #vis fn call(
                    self: &::std::sync::Arc<Self>,
                    __graph: &#krate::dag::Graph,
                ) -> #krate::Result<#handles_ident>
                where
                    for<'__nemo> Self: #krate::dag::LazyDataLayer,
                {
                    let mut __out = __graph.add_data_layer(
                        <Self as #krate::dag::LazyDataLayer>::__as_dyn_data_layer(self),
                    )?;
                    ::core::result::Result::Ok(#handles_ident { #(#take_handles,)* })
                }
            }
        }
    } else {
        let mandatory: Vec<&PortModel> = model.inputs.iter().filter(|p| !p.optional).collect();
        let generics: Vec<_> = (0..mandatory.len())
            .map(|i| format_ident!("P{}", i))
            .collect();
        let mut g = 0usize;
        let in_fields = model.inputs.iter().map(|p| {
            let name = &p.name;
            let doc = format!("Port `{}`.", p.text);
            if p.optional {
                let axes = p.axes_tuple();
                let element = &p.element;
                quote!(#[doc = #doc] pub #name: ::core::option::Option<#krate::typed::NTensor<#axes, #element>>)
            } else {
                let gp = &generics[g];
                g += 1;
                quote!(#[doc = #doc] pub #name: #gp)
            }
        });
        let in_fields: Vec<_> = in_fields.collect();
        // Per mandatory port: the value is a typed value of its path (`Port` for `forward`,
        // `Symbolic` for `call`) whose element and axes fit the port. Both bounds carry the
        // port's span, so rustc's note points at the port's declaration.
        let bounds_for = |value: TokenStream| -> Vec<TokenStream> {
            mandatory
                .iter()
                .zip(&generics)
                .map(|(p, gp)| {
                    let check = port_trait_ident(&module_name, p);
                    respan(
                        quote! {
                            #gp: #value,
                            <#gp as #value>::Element: #ports_mod::#check<<#gp as #value>::Axes>,
                        },
                        p.span(),
                    )
                })
                .collect()
        };
        let bounds = bounds_for(quote!(#krate::typed::Port));
        let lazy_bounds = bounds_for(quote!(#krate::dag::Symbolic));
        let checks = model.inputs.iter().enumerate().map(|(i, p)| {
            let name = &p.name;
            if p.optional {
                quote! {
                    if let ::core::option::Option::Some(v) = &__inputs.#name {
                        __check.port(#input_dir, &__in_ports[#i], v.tensor(), v.element_type())?;
                    }
                }
            } else {
                quote! {
                    __check.port(
                        #input_dir,
                        &__in_ports[#i],
                        #krate::typed::Port::tensor(&__inputs.#name),
                        #krate::typed::Port::element_type(&__inputs.#name),
                    )?;
                }
            }
        });
        let raws = model.inputs.iter().map(|p| {
            let name = &p.name;
            if p.optional {
                quote!(#name: __inputs.#name.as_ref().map(|v| v.tensor().clone()))
            } else {
                quote!(#name: #krate::typed::Port::tensor(&__inputs.#name).clone())
            }
        });
        let inputs_doc = format!(
            "Typed inputs of [`{module_name}`]: the named arguments of its typed call `forward`.\n\n{}",
            describe(&model.inputs)
        );
        let forward_t_doc = format!(
            "[`forward`](Self::forward) in the mode `ctx` gives: training (dropout, batch statistics, random draws from `ctx`) or evaluation. The typed call of [`{module_name}`]."
        );
        let forward_doc = format!(
            "The typed call of [`{module_name}`], in evaluation mode ([`forward_t`](Self::forward_t) takes a `ForwardCtx` to train): connects typed values to its input ports (checked by the compiler), runs the runtime fallback on inputs and outputs, and returns typed outputs.\n\n# Inputs\n{}\n\n# Outputs\n{}",
            describe(&model.inputs),
            describe(&model.outputs)
        );
        let lazy_inputs = model.inputs.iter().map(|p| {
            let name = &p.name;
            let key = name.to_string();
            if p.optional {
                quote! {
                    if let ::core::option::Option::Some(v) = &__inputs.#name {
                        __call.constant(#key, v.tensor().clone());
                    }
                }
            } else {
                quote!(__call.input(#key, #krate::dag::Symbolic::dyn_handle(&__inputs.#name));)
            }
        });
        let call_body = if fallback {
            quote!(::core::unreachable!("#[neural_module] had errors"))
        } else {
            quote! {
                let mut __call = #krate::dag::LazyCall::new(
                    <Self as #krate::dag::LazyModule>::__as_dyn_module(self),
                );
                #(#lazy_inputs)*
                let mut __out = __call.finish()?;
                ::core::result::Result::Ok(#handles_ident { #(#take_handles,)* })
            }
        };
        let call_doc = format!(
            "The lazy call of [`{module_name}`]: connects symbolic graph handles (`dag::Handle`) to its input ports — checked by the compiler with the same bounds as `forward`, and at wiring time against the runtime types — and records a node; nothing is computed. Returns one handle per output port. Optional ports take a constant tensor.\n\n# Inputs\n{}\n\n# Outputs\n{}",
            describe(&model.inputs),
            describe(&model.outputs),
        );
        let body = if fallback {
            quote!(::core::unreachable!("#[neural_module] had errors"))
        } else {
            quote! {
                    let __cfg = <Self as #krate::module::NeuralModule>::port_config(self);
                    let mut __check = #krate::check::CallCheck::new(
                        <Self as #krate::module::NeuralModule>::NAME,
                        <Self as #krate::module::NeuralModule>::symbols(),
                        &__cfg,
                    );
                    let __in_ports = <Self as #krate::module::NeuralModule>::input_ports();
                    if __check.active() {
                        #(#checks)*
                    }
                    let __raw_in = #in_tensors { #(#raws,)* };
                    let __raw = <Self as #krate::module::ForwardImpl>::__forward(self, __raw_in, __ctx)?;
                    if __check.active() {
                        <Self as #krate::module::NeuralModule>::check_outputs(self, &mut __check, &__raw)?;
                    }
                    let __out_ports = <Self as #krate::module::NeuralModule>::output_ports();
                    ::core::result::Result::Ok(#outputs_ident { #(#wrap_outputs,)* })
            }
        };
        let struct_generics = if generics.is_empty() {
            quote!()
        } else {
            quote!(<#(#generics),*>)
        };
        quote! {
            #[doc = #inputs_doc]
            #vis struct #inputs_ident #struct_generics {
                #(#in_fields,)*
            }

            #[automatically_derived]
            impl #impl_generics #ident #ty_generics #where_clause {
                #[doc = #forward_doc]
                #[allow(clippy::too_many_arguments, clippy::type_complexity)]
                #vis fn forward<#(#generics,)*>(
                    &self,
                    __inputs: #inputs_ident #struct_generics,
                ) -> #krate::Result<#outputs_ident>
                where
                    #(#bounds)*
                {
                    self.forward_t(__inputs, &#krate::ForwardCtx::eval())
                }

                #[doc = #forward_t_doc]
                #[allow(clippy::too_many_arguments, clippy::type_complexity)]
                #vis fn forward_t<#(#generics,)*>(
                    &self,
                    __inputs: #inputs_ident #struct_generics,
                    __ctx: &#krate::ForwardCtx,
                ) -> #krate::Result<#outputs_ident>
                where
                    #(#bounds)*
                {
                    #body
                }

                #[doc = #call_doc]
                #[allow(clippy::too_many_arguments, clippy::type_complexity)]
                #vis fn call<#(#generics,)*>(
                    self: &::std::sync::Arc<Self>,
                    __inputs: #inputs_ident #struct_generics,
                ) -> #krate::Result<#handles_ident>
                where
                    #(#lazy_bounds)*
                    for<'__nemo> Self: #krate::dag::LazyModule,
                {
                    #call_body
                }
            }
        }
    };

    let ports_module = port_checks(krate, vis, &module_name, &ports_mod, &model.inputs);

    let loss_assert = if model.kind == Kind::Loss {
        model.outputs.first().map(|p| {
            let element = &p.element;
            quote_spanned! {p.span()=>
                const _: fn() = || {
                    fn __nemo_loss_output_is_a_loss<E: #krate::typed::IsA<#krate::typed::elements::Loss>>() {}
                    __nemo_loss_output_is_a_loss::<#element>();
                };
            }
        })
    } else {
        None
    };

    quote! {
        #ports_module

        #[doc = #outputs_doc]
        #[derive(Debug, Clone)]
        #vis struct #outputs_ident {
            #(#out_fields,)*
        }

        #[doc = #handles_doc]
        #[derive(Debug, Clone)]
        #vis struct #handles_ident {
            #(#handle_fields,)*
        }

        #in_struct
        #out_struct

        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        const #in_const: &[#krate::check::PortSpec] = &[#(#in_specs),*];
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        const #out_const: &[#krate::check::PortSpec] = &[#(#out_specs),*];

        #loss_assert

        #[automatically_derived]
        impl #impl_generics #krate::module::NeuralModule for #ident #ty_generics #where_clause {
            const NAME: &'static str = #module_name;
            const KIND: #krate::module::ModuleKind = #kind;
            type InputTensors = #in_tensors_ty;
            type OutputTensors = #out_tensors;
            fn input_ports() -> &'static [#krate::check::PortSpec] {
                #in_const
            }
            fn output_ports() -> &'static [#krate::check::PortSpec] {
                #out_const
            }
            fn symbols() -> &'static [&'static str] {
                &[#(#symbols),*]
            }
            #[allow(clippy::unnecessary_cast)]
            fn port_config(&self) -> #krate::check::PortConfig {
                #[allow(unused_mut)]
                let mut __c = #krate::check::PortConfig::default();
                #(#sizes)*
                #(#params)*
                __c
            }
            #[allow(unused_variables)]
            fn check_inputs(
                &self,
                __check: &mut #krate::check::CallCheck<'_>,
                __x: &Self::InputTensors,
            ) -> #krate::Result<()> {
                #[allow(unused_variables)]
                let __ports = #in_const;
                #(#check_in)*
                ::core::result::Result::Ok(())
            }
            fn check_outputs(
                &self,
                __check: &mut #krate::check::CallCheck<'_>,
                __y: &Self::OutputTensors,
            ) -> #krate::Result<()> {
                let __ports = #out_const;
                #(#check_out)*
                ::core::result::Result::Ok(())
            }
        }

        #typed
    }
}

/// `JasperEncoder` → `jasper_encoder`, `ConvAsrDecoder` → `conv_asr_decoder`.
fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).and_then(|j| chars.get(j));
            let next = chars.get(i + 1);
            let boundary = match prev {
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_uppercase() => next.is_some_and(|n| n.is_lowercase()),
                _ => false,
            };
            if boundary {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The check trait of input port `port`: `JasperEncoder_audio_signal`. The name is what the
/// `help:` line of a miswiring error shows, so it says which port of which module it checks.
fn port_trait_ident(module_name: &str, port: &PortModel) -> syn::Ident {
    format_ident!("{}_{}", module_name, port.name)
}

/// One trait per mandatory input port, implemented by the element types that fit it for the
/// axes that fit it. Each trait's message names the module, the port and the expected type as
/// literal text, so the error reads the same whatever the user's crate imports; the module is
/// public and not hidden so that rustc prints the trait by its name alone.
fn port_checks(
    krate: &TokenStream,
    vis: &syn::Visibility,
    module_name: &str,
    ports_mod: &syn::Ident,
    inputs: &[PortModel],
) -> TokenStream {
    let traits: Vec<TokenStream> = inputs
        .iter()
        .filter(|p| !p.optional)
        .map(|p| {
            let check = port_trait_ident(module_name, p);
            let port = p.name.to_string();
            let expected = p.type_text();
            let axes_text = p.axes_text();
            let axes = p.axes_tuple();
            let element = &p.element;
            let message = format!(
                "port `{port}` of `{module_name}` expects `{expected}`, found `{{A}} {{Self}}`"
            );
            let label = format!("expected `{expected}`, found `{{A}} {{Self}}`");
            let note = if p.axes.is_some() {
                format!(
                    "`{port}` takes values with axes `{axes_text}` in this order (reorder with `.permute_to::<{axes_text}>()`) whose element type is `{}` or a more specific kind of it",
                    p.element_name
                )
            } else {
                format!(
                    "`{port}` takes a value without axes whose element type is `{}` or a more specific kind of it",
                    p.element_name
                )
            };
            let doc = format!(
                "The compile-time check of input port `{port}: {expected}` of [`{module_name}`](super::{module_name}): implemented by the element types that fit it, for the axes that fit it."
            );
            quote! {
                #[doc = #doc]
                #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
                pub trait #check<A> {}

                #[diagnostic::do_not_recommend]
                impl<__E, __A> #check<__A> for __E
                where
                    __E: #krate::typed::IsA<#element>,
                    __A: #krate::typed::AxesFit<#axes>,
                {
                }
            }
        })
        .collect();
    if traits.is_empty() {
        return quote!();
    }
    let doc = format!(
        "Compile-time checks of the input ports of [`{module_name}`](super::{module_name}), one trait per port: a call that connects a value of the wrong axes or element type fails to build with the message of the port's trait."
    );
    // Second names of the module and its inputs struct: rustc prints an item by its name alone
    // only if the user's crate does not name it through a glob import (`use
    // nemo::asr::modules::*;`); then it prints a unique second name rather than a path.
    let module = format_ident!("{}", module_name);
    let inputs = format_ident!("{}Inputs", module_name);
    let module_second = format_ident!("{}Module", module_name);
    let inputs_second = format_ident!("{}InputPorts", module_name);
    let module_doc = format!(
        "[`{module_name}`](super::{module_name}) under the name rustc prints when a user's crate imports `{module_name}` through a glob."
    );
    let inputs_doc = format!(
        "[`{module_name}Inputs`](super::{module_name}Inputs) under the name rustc prints when a user's crate imports it through a glob."
    );
    // Only a public module can be re-exported; other modules are the user's own, which rustc
    // always prints by name.
    let second_names = matches!(vis, syn::Visibility::Public(_)).then(|| {
        quote! {
            #[doc = #module_doc]
            pub use super::#module as #module_second;
            #[doc = #inputs_doc]
            pub use super::#inputs as #inputs_second;
        }
    });
    quote! {
        #[doc = #doc]
        #[allow(non_camel_case_types)]
        #vis mod #ports_mod {
            #[allow(unused_imports)]
            use super::*;
            #second_names
            #(#traits)*
        }
    }
}
