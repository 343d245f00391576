//! `/auth/login`, `/auth/refresh`, `/auth/logout` in Directus's three modes (`json`,
//! `cookie`, `session`), and the middleware that turns every request's token — bearer header,
//! `?access_token=`, or session cookie — into a [`Caller`].

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value as Json, json};

use super::AppState;
use super::extract::{JsonBody, json_text, no_content};
use crate::config::CookieConfig;
use crate::error::{ApiError, ErrorCode};
use crate::services::auth::{Issued, LoginMode, Origin};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", post(login))
        .route("/refresh", post(refresh))
        .route("/logout", post(logout))
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(config: &CookieConfig, value: &str, max_age_secs: u64) -> Option<HeaderValue> {
    let mut text = format!(
        "{}={}; Path=/; HttpOnly; Max-Age={}; SameSite={}",
        config.name,
        value,
        max_age_secs,
        config.same_site.as_str()
    );
    if config.secure {
        text.push_str("; Secure");
    }
    if let Some(domain) = &config.domain {
        text.push_str(&format!("; Domain={domain}"));
    }
    HeaderValue::from_str(&text).ok()
}

/// The token a request presents, in Directus's order of precedence.
fn presented_token(request: &Request, state: &AppState) -> Option<String> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION)
        && let Ok(text) = value.to_str()
        && let Some(token) = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
    {
        return Some(token.trim().to_string());
    }
    if let Some(query) = request.uri().query()
        && let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        && let Some((_, token)) = pairs.into_iter().find(|(k, _)| k == "access_token")
    {
        return Some(token);
    }
    cookie(request.headers(), &state.config.auth.session_cookie.name)
}

fn client_ip(request: &Request) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Resolves the caller of every request; a bad token ends the request with Directus's error.
pub async fn resolve_caller(state: &AppState, mut request: Request, next: Next) -> Response {
    let ip = client_ip(&request);
    let user = match presented_token(&request, state) {
        None => None,
        Some(token) => match state.auth.authenticate(&token).await {
            Ok(user) => Some(user),
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    let caller = state
        .authz
        .caller(
            user.as_ref().map(|u| (u.id.as_str(), u.role.as_deref())),
            ip,
        )
        .await;
    match caller {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn text_field<'j>(body: &'j Json, name: &str) -> Result<Option<&'j str>, ApiError> {
    match body.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::new(
            ErrorCode::InvalidPayload,
            format!("Invalid payload. \"{name}\" must be a string."),
        )),
    }
}

fn mode_of(body: &Json) -> Result<LoginMode, ApiError> {
    LoginMode::parse(text_field(body, "mode")?).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidPayload,
            "Invalid payload. \"mode\" must be one of json, cookie, session.",
        )
    })
}

fn origin_of(headers: &HeaderMap, ip: Option<std::net::IpAddr>) -> Origin {
    let text = |h: header::HeaderName| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Origin {
        ip,
        user_agent: text(header::USER_AGENT),
        origin: text(header::ORIGIN),
    }
}

/// The response of a login or refresh, shaped by its mode.
fn issued_response(state: &AppState, issued: Issued) -> Response {
    let auth = &state.config.auth;
    let (body, cookie) = match issued.mode {
        LoginMode::Json => (
            json!({"data": {"access_token": issued.access_token, "refresh_token": issued.refresh_token, "expires": issued.expires_ms}}),
            None,
        ),
        LoginMode::Cookie => (
            json!({"data": {"access_token": issued.access_token, "expires": issued.expires_ms}}),
            set_cookie(
                &auth.refresh_cookie,
                &issued.refresh_token,
                auth.refresh_token_ttl.as_secs(),
            ),
        ),
        LoginMode::Session => (
            json!({"data": {"expires": issued.expires_ms}}),
            set_cookie(
                &auth.session_cookie,
                &issued.access_token,
                auth.session_ttl.as_secs(),
            ),
        ),
    };
    let mut response = json_text(axum::http::StatusCode::OK, body.to_string());
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

async fn login(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let ip = client_ip(&request);
    let headers = request.headers().clone();
    let JsonBody(body) = JsonBody::from_request(request, &state).await?;
    let required = |name: &str| -> Result<String, ApiError> {
        text_field(&body, name)?.map(str::to_string).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidPayload,
                format!("Invalid payload. \"{name}\" is required."),
            )
        })
    };
    let email = required("email")?;
    let password = required("password")?;
    let mode = mode_of(&body)?;
    let issued = state
        .auth
        .login(&email, &password, mode, origin_of(&headers, ip))
        .await?;
    Ok(issued_response(&state, issued))
}

/// The refresh token of a refresh or logout: the body's, else the cookie's of the mode.
fn refresh_token_of(
    state: &AppState,
    headers: &HeaderMap,
    body: &Json,
    mode: LoginMode,
) -> Result<String, ApiError> {
    if let Some(token) = text_field(body, "refresh_token")? {
        return Ok(token.to_string());
    }
    let auth = &state.config.auth;
    let from_cookie = match mode {
        LoginMode::Session => cookie(headers, &auth.session_cookie.name)
            .and_then(|jwt| state.auth.session_refresh_token(&jwt)),
        _ => cookie(headers, &auth.refresh_cookie.name),
    };
    from_cookie.ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidPayload,
            "Invalid payload. The refresh token is required in either the payload or cookie.",
        )
    })
}

async fn refresh(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let headers = request.headers().clone();
    let JsonBody(body) = JsonBody::from_request(request, &state).await?;
    // A session cookie without a mode in the body means a session-mode refresh.
    let mode = match text_field(&body, "mode")? {
        None if cookie(&headers, &state.config.auth.session_cookie.name).is_some()
            && text_field(&body, "refresh_token")?.is_none()
            && cookie(&headers, &state.config.auth.refresh_cookie.name).is_none() =>
        {
            LoginMode::Session
        }
        _ => mode_of(&body)?,
    };
    let token = refresh_token_of(&state, &headers, &body, mode)?;
    let issued = state.auth.refresh(&token, mode).await?;
    Ok(issued_response(&state, issued))
}

async fn logout(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let headers = request.headers().clone();
    let JsonBody(body) = JsonBody::from_request(request, &state).await?;
    let mode = match text_field(&body, "mode")? {
        None if cookie(&headers, &state.config.auth.session_cookie.name).is_some()
            && text_field(&body, "refresh_token")?.is_none() =>
        {
            LoginMode::Session
        }
        _ => mode_of(&body)?,
    };
    let token = refresh_token_of(&state, &headers, &body, mode)?;
    state.auth.logout(&token).await?;
    let mut response = no_content();
    let auth = &state.config.auth;
    for config in [&auth.refresh_cookie, &auth.session_cookie] {
        if cookie(&headers, &config.name).is_some()
            && let Some(clear) = set_cookie(config, "", 0)
        {
            response.headers_mut().append(header::SET_COOKIE, clear);
        }
    }
    Ok(response)
}
