//! A little HTML: escaping, a bare page, and a form that carries the CSRF token. Apps with a
//! template engine need none of it.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// Escapes text for HTML element content and attribute values.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A minimal HTML document titled `title` around `body` (which is inserted as it is: escape
/// what came from elsewhere).
pub fn document(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=en><meta charset=utf-8><title>{}</title>{body}",
        escape(title)
    ))
}

/// A POST form to `action` that carries the browser's CSRF token (what our routes and
/// [`CsrfForm`](crate::CsrfForm) check), around `fields` (inserted as they are).
#[must_use]
pub fn csrf_form(action: &str, csrf_token: &str, fields: &str) -> String {
    format!(
        "<form method=post action=\"{}\"><input type=hidden name=csrf value=\"{}\">{fields}</form>",
        escape(action),
        escape(csrf_token)
    )
}

/// A plain page with a title, a message and a link home.
pub(crate) fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=en><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title>\
         <body style=\"font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em\">\
         <h1>{title}</h1><p role=alert>{message}</p><p><a href=\"/\">Back to the start page</a></p>",
        title = escape(title),
        message = escape(message)
    );
    (status, Html(body)).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_csrf_form_escapes_its_action_and_token() {
        let form = super::csrf_form("/a\"b", "t<1", "<button>Go</button>");
        assert_eq!(
            form,
            "<form method=post action=\"/a&quot;b\"><input type=hidden name=csrf value=\"t&lt;1\"><button>Go</button></form>"
        );
    }

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            super::escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
