// The official Directus SDK (@directus/sdk, pinned in package.json) against a running
// rectus: login and refresh, the data model made through the SDK, items written and read
// with the query language, errors as the SDK sees them, GraphQL, revisions, a role and its policy made through their
// relations and a user of it reading, a static token and
// logout. Run by tests/it/sdk.rs as `node smoke.mjs URL EMAIL PASSWORD`; prints one JSON
// line with what it saw and exits 1 on the first assertion that fails.
import assert from 'node:assert/strict';
import {
	aggregate,
	authentication,
	createCollection,
	createDirectus,
	createField,
	createItem,
	createItems,
	createPolicy,
	createRelation,
	createRole,
	createUser,
	deleteItem,
	graphql,
	readItem,
	readItems,
	readMe,
	readPolicies,
	readRevisions,
	readRoles,
	rest,
	staticToken,
	updateItem,
	updateItems,
	updateMe,
} from '@directus/sdk';

const [url, email, password] = process.argv.slice(2);
assert.ok(url && email && password, 'usage: node smoke.mjs URL EMAIL PASSWORD');

const client = createDirectus(url).with(authentication('json')).with(rest()).with(graphql());

/** The Directus error code the SDK's thrown error carries. */
async function codeOf(promise) {
	try {
		await promise;
	} catch (error) {
		assert.ok(Array.isArray(error.errors), `a Directus error body: ${JSON.stringify(error)}`);
		return error.errors[0].extensions.code;
	}
	assert.fail('the request was expected to fail');
}

const login = await client.login(email, password);
assert.equal(typeof login.access_token, 'string');
assert.equal(typeof login.refresh_token, 'string');
assert.equal(typeof login.expires, 'number');
const me = await client.request(readMe({ fields: ['id', 'email'] }));
assert.equal(me.email, email);

await client.request(
	createCollection({
		collection: 'authors',
		schema: {},
		meta: {},
		fields: [
			{ field: 'id', type: 'integer', schema: { is_primary_key: true, has_auto_increment: true } },
			{ field: 'name', type: 'string', schema: {} },
		],
	}),
);
await client.request(
	createCollection({
		collection: 'books',
		schema: {},
		meta: {},
		fields: [
			{ field: 'id', type: 'integer', schema: { is_primary_key: true, has_auto_increment: true } },
			{ field: 'title', type: 'string', schema: {}, meta: { required: true } },
			{ field: 'pages', type: 'integer', schema: {} },
			{ field: 'price', type: 'decimal', schema: { numeric_precision: 10, numeric_scale: 2 } },
			{ field: 'published', type: 'boolean', schema: { default_value: false } },
			{ field: 'author', type: 'integer', schema: {}, meta: { special: ['m2o'] } },
		],
	}),
);
await client.request(
	createRelation({
		collection: 'books',
		field: 'author',
		related_collection: 'authors',
		meta: { one_field: 'books' },
	}),
);
await client.request(createField('authors', { field: 'books', type: 'alias', meta: { special: ['o2m'] } }));

const ada = await client.request(createItem('authors', { name: 'Ada' }));
assert.equal(ada.name, 'Ada');
const books = await client.request(
	createItems('books', [
		{ title: 'Analytical', pages: 100, price: '9.50', published: true, author: ada.id },
		{ title: 'Bernoulli', pages: 250, price: '20.00', published: false, author: ada.id },
		{ title: 'Countess', pages: 50, price: '5.25', published: true, author: ada.id },
	]),
);
assert.equal(books.length, 3);
// Decimals are strings, as Directus answers them (their digits as each database keeps them).
assert.equal(typeof books[1].price, 'string');
assert.equal(Number(books[1].price), 20);
assert.equal(books[0].published, true);

const long = await client.request(
	readItems('books', {
		fields: ['title', 'pages', { author: ['name'] }],
		filter: { pages: { _gte: 100 } },
		sort: ['-pages'],
	}),
);
assert.deepEqual(long, [
	{ title: 'Bernoulli', pages: 250, author: { name: 'Ada' } },
	{ title: 'Analytical', pages: 100, author: { name: 'Ada' } },
]);

const authors = await client.request(
	readItems('authors', {
		fields: ['name', { books: ['title'] }],
		deep: { books: { _sort: ['-title'], _limit: 2 } },
	}),
);
assert.deepEqual(authors, [{ name: 'Ada', books: [{ title: 'Countess' }, { title: 'Bernoulli' }] }]);

const found = await client.request(readItems('books', { search: 'noul', fields: ['title'] }));
assert.deepEqual(found, [{ title: 'Bernoulli' }]);

const paged = await client.request(readItems('books', { fields: ['id'], sort: ['id'], limit: 1, page: 2 }));
assert.deepEqual(paged, [{ id: books[1].id }]);

const byPublished = await client.request(
	aggregate('books', { aggregate: { count: '*', sum: ['pages'] }, groupBy: ['published'] }),
);
const counts = Object.fromEntries(byPublished.map((g) => [String(g.published), [Number(g.count), Number(g.sum.pages)]]));
assert.deepEqual(counts, { true: [2, 150], false: [1, 250] });

const one = await client.request(readItem('books', books[0].id, { fields: ['*', 'author.*'] }));
assert.equal(one.title, 'Analytical');
assert.equal(one.author.name, 'Ada');

const updated = await client.request(updateItem('books', books[2].id, { pages: 60 }));
assert.equal(updated.pages, 60);
const keys = await client.request(updateItems('books', [books[0].id, books[1].id], { published: true }));
assert.equal(keys.length, 2);
assert.ok(keys.every((b) => b.published === true));
await client.request(deleteItem('books', books[2].id));

assert.equal(await codeOf(client.request(readItem('books', books[2].id))), 'FORBIDDEN');
assert.equal(await codeOf(client.request(readItems('no_such_collection'))), 'FORBIDDEN');
assert.equal(
	await codeOf(client.request(readItems('books', { filter: { pages: { _in: [] } } }))),
	'INVALID_QUERY',
);
assert.equal(await codeOf(client.request(createItem('books', { pages: 3 }))), 'FAILED_VALIDATION');

const revisions = await client.request(
	readRevisions({ filter: { collection: { _eq: 'books' }, item: { _eq: String(books[2].id) } }, fields: ['data', 'delta'] }),
);
assert.equal(revisions.length, 2, 'a create and an update of the deleted book');

const gql = await client.query(`query { books(sort: ["title"]) { title author { name } } }`);
assert.deepEqual(gql.books, [
	{ title: 'Analytical', author: { name: 'Ada' } },
	{ title: 'Bernoulli', author: { name: 'Ada' } },
]);

// A role made the way the Studio makes one: its policy's permissions and the policy's
// place on the role are written through their relations, in the same requests.
const policy = await client.request(
	createPolicy({
		name: 'Long reads',
		app_access: false,
		admin_access: false,
		permissions: {
			create: [{ collection: 'books', action: 'read', fields: ['id', 'title'], permissions: { pages: { _gte: 200 } } }],
			update: [],
			delete: [],
		},
	}),
);
const role = await client.request(
	createRole({ name: 'Readers', policies: { create: [{ policy: policy.id }], update: [], delete: [] } }),
);
const roles = await client.request(
	readRoles({ filter: { id: { _eq: role.id } }, fields: ['name', { policies: [{ policy: ['name'] }] }] }),
);
assert.deepEqual(roles, [{ name: 'Readers', policies: [{ policy: { name: 'Long reads' } }] }]);
const policies = await client.request(
	readPolicies({ filter: { id: { _eq: policy.id } }, fields: [{ permissions: ['collection', 'action'] }, { roles: [{ role: ['name'] }] }] }),
);
assert.deepEqual(policies, [{ permissions: [{ collection: 'books', action: 'read' }], roles: [{ role: { name: 'Readers' } }] }]);
await client.request(createUser({ email: 'reader@example.com', password: 'reader-password-1', role: role.id }));
const reader = createDirectus(url).with(authentication('json')).with(rest());
await reader.login('reader@example.com', 'reader-password-1');
assert.deepEqual(await reader.request(readItems('books')), [{ id: books[1].id, title: 'Bernoulli' }]);
assert.equal(await codeOf(reader.request(readItems('books', { fields: ['pages'] }))), 'FORBIDDEN');
assert.equal(await codeOf(reader.request(readItems('authors'))), 'FORBIDDEN');
// Signing out also stops the SDK's refresh timer, which would keep Node.js running.
await reader.logout();

await client.refresh();
assert.equal((await client.request(readMe({ fields: ['email'] }))).email, email);

await client.request(updateMe({ token: 'sdk-static-token-0123456789' }));
const service = createDirectus(url).with(staticToken('sdk-static-token-0123456789')).with(rest());
assert.equal((await service.request(readMe({ fields: ['email'] }))).email, email);

await client.logout();
// Signed out, /users/me has no user to answer for: 401, as Directus answers.
assert.equal(await codeOf(client.request(readMe())), 'INVALID_CREDENTIALS');

console.log(JSON.stringify({ author: ada.id, books: books.map((b) => b.id), role: role.id, policy: policy.id }));
