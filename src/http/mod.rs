//! The HTTP API: the router, the middleware every request passes (request id, SEARCH, the
//! caller), and the server with graceful shutdown. Route groups live in their own modules.

mod auth;
mod datamodel;
mod export;
mod extract;
pub mod graphql;
mod items;
mod openapi;
mod request_id;
mod server;
mod system;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::Uri;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use rectus_policies::SchemaOverview;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::db::Database;
use crate::error::ApiError;
use crate::services::auth::AuthService;
use crate::services::authz::Authz;

/// What every handler can reach. Extractors clone it per request: one shared pointer, not
/// one per service.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub db: Database,
    pub config: Arc<Config>,
    pub authz: Arc<Authz>,
    pub auth: Arc<AuthService>,
    pub graphql: Arc<graphql::Schemas>,
    pub plans: Arc<crate::planner::PlanCache>,
    schema: Arc<RwLock<Arc<SchemaOverview>>>,
    schema_generation: Arc<std::sync::atomic::AtomicU64>,
}

impl AppState {
    pub fn new(db: Database, config: Config, schema: SchemaOverview) -> Self {
        let config = Arc::new(config);
        let authz = Arc::new(Authz::new(db.clone()));
        let auth = Arc::new(AuthService::new(db.clone(), config.clone(), authz.clone()));
        AppState(Arc::new(Shared {
            db,
            config,
            authz,
            auth,
            graphql: Arc::default(),
            plans: Arc::default(),
            schema: Arc::new(RwLock::new(Arc::new(schema))),
            schema_generation: Arc::default(),
        }))
    }

    /// Reads the schema from the database again and serves it from now on.
    pub async fn refresh_schema(&self) -> Result<(), ApiError> {
        let fresh = crate::db::introspect::introspect(&self.db).await?;
        match self.schema.write() {
            Ok(mut s) => *s = Arc::new(fresh),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(fresh),
        }
        self.schema_generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Changes whenever the schema or the permissions may have changed.
    pub fn generation(&self) -> u64 {
        self.authz.generation()
            + self
                .schema_generation
                .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The schema as last introspected.
    pub fn schema(&self) -> Arc<SchemaOverview> {
        match self.schema.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// The routes, without the middleware (see [`app`]).
fn routes(state: AppState) -> Router {
    Router::new()
        .nest("/server", server::routes())
        .nest("/auth", auth::routes())
        .merge(items::items_routes())
        .nest("/users", system::users_routes())
        .nest("/roles", items::system_routes("directus_roles"))
        .nest("/policies", items::system_routes("directus_policies"))
        .nest("/access", items::system_routes("directus_access"))
        .nest("/permissions", system::permissions_routes())
        .nest("/activity", items::read_only_routes("directus_activity"))
        .nest("/revisions", items::read_only_routes("directus_revisions"))
        .nest("/collections", datamodel::collections_routes())
        .nest("/fields", datamodel::fields_routes())
        .nest("/relations", datamodel::relations_routes())
        .nest("/utils", datamodel::utils_routes())
        .nest("/schema", datamodel::schema_routes())
        .merge(graphql::routes())
        .fallback(route_not_found)
        .method_not_allowed_fallback(route_not_found)
        .with_state(state)
}

/// The routes inside the middleware every request passes. The middleware wraps the router
/// instead of being layered onto it: layered, it would wrap every route's handler, and each
/// request would clone and box each layer again; here it runs once, before routing (which
/// a SEARCH request needs anyway, as it is turned into its GET before it is routed).
pub fn app(
    state: AppState,
) -> impl tower::Service<
    Request,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    tower::ServiceBuilder::new()
        .layer(axum::extract::DefaultBodyLimit::max(extract::MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(state.clone(), front))
        .service(routes(state))
}

/// What every request passes before it is routed, as one middleware (each `from_fn` layer
/// boxes the rest of the request's work again): its request id and span, a SEARCH turned
/// into its GET, and the caller resolved from its token.
async fn front(State(state): State<AppState>, request: Request, next: Next) -> Response {
    request_id::with_request_id(request, async |request| {
        match extract::search_as_get(request).await {
            Ok(request) => auth::resolve_caller(&state, request, next).await,
            Err(response) => response,
        }
    })
    .await
}

async fn route_not_found(uri: Uri) -> impl IntoResponse {
    ApiError::route_not_found(uri.path())
}

/// Binds `HOST:PORT`; the address is returned so callers can print it (PORT=0 picks one).
pub async fn bind(config: &Config) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind((config.host, config.port)).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Serves until SIGTERM or SIGINT, then stops accepting, lets in-flight requests finish and
/// closes the database pool.
pub async fn serve(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    let db = state.db.clone();
    // Nagle's algorithm could hold back the last part of a response written in several
    // writes until the client acknowledges the first.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app(state)),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    tracing::info!("in-flight requests finished; closing database connections");
    db.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received, shutting down"),
        _ = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}
