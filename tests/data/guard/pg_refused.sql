# Statements the PostgreSQL guard must refuse for a restricted user. Schema in the tests:
# orders(id, customer, status, amount, secret: hidden), customers(id, name), notes (no
# permission). Statements are separated by lines holding only "--;".
# -- hidden columns, anywhere
select secret from orders
--;
select id from orders where secret = 'x'
--;
select id from orders order by secret
--;
select status, count(*) from orders group by secret, status
--;
select max(secret) from orders
--;
select o.id from orders o join customers c on c.name = o.secret
--;
select row_number() over (partition by secret) from orders
--;
select id from orders join customers using (secret)
--;
select (select secret) from orders
--;
select id from orders where exists (select 1 from customers where customers.name = orders.secret)
--;
# -- tables without permission, catalogs, other schemas
select * from notes
--;
select * from public.notes
--;
select * from pg_catalog.pg_authid
--;
select * from pg_shadow
--;
select * from pg_stats
--;
select * from pg_stat_activity
--;
select * from information_schema.routines
--;
select * from information_schema.role_table_grants
--;
select * from information_schema.user_mappings
--;
select * from other_schema.orders
--;
select * from directus_users
--;
select * from mydb.public.orders
--;
select * from orders, notes
--;
select (select count(*) from notes)
--;
# -- CTE shadowing and scope
with orders as (select 1 as id) select * from orders
--;
with pg_class as (select 1) select * from pg_class
--;
with a as (select * from b), b as (select 1) select * from a
--;
# -- functions that run SQL text, read files, change settings, sleep, reveal state
select query_to_xml('select * from notes', true, true, '')
--;
select * from dblink('dbname=x', 'select 1') as t(a int)
--;
select pg_read_file('/etc/passwd')
--;
select pg_catalog.pg_read_file('/etc/passwd')
--;
select lo_import('/etc/passwd')
--;
select pg_sleep(10)
--;
select set_config('search_path', 'evil', false)
--;
select current_setting('data_directory')
--;
select version()
--;
select current_user
--;
select session_user
--;
select user
--;
select current_schema
--;
select xpath('/a', '<a/>')
--;
select evil.lower('x')
--;
select 1 OPERATOR(public.+) 1
--;
select 'pg_read_file'::regproc
--;
select 'notes'::regclass
--;
select id::xml from orders
--;
select txid_current()
--;
select nextval('orders_id_seq')
--;
select * from generate_series(1, 3), pg_ls_dir('.')
--;
# -- catalog functions that look objects up by id only on the virtual catalogs' own rows
select pg_catalog.pg_get_userbyid(10)
--;
select pg_get_indexdef(x) from pg_class, (values (1)) v(x)
--;
select pg_table_is_visible(c.oid + 1) from pg_class c
--;
select 16384::regclass
--;
select ('no' || 'tes')::regclass
--;
select * from pg_settings
--;
select * from pg_user
--;
select * from pg_largeobject
--;
select * from pg_proc
--;
# -- statements that are not queries
copy orders to stdout
--;
copy orders from program 'id'
--;
copy (select * from orders) to '/tmp/x'
--;
do $$ begin perform 1; end $$
--;
call some_procedure()
--;
listen things
--;
notify things
--;
lock table orders
--;
create table x (a int)
--;
drop table orders
--;
alter table orders add column x int
--;
truncate orders
--;
grant all on orders to public
--;
create temp table t as select * from orders
--;
create function f() returns int as 'select 1' language sql
--;
vacuum orders
--;
analyze orders
--;
discard all
--;
reset all
--;
reset role
--;
reset session authorization
--;
set role postgres
--;
set session authorization postgres
--;
set search_path = evil, public
--;
set search_path to pg_temp
--;
set client_encoding = 'SJIS'
--;
set standard_conforming_strings = off
--;
set names 'SJIS'
--;
set session_replication_role = replica
--;
show data_directory
--;
show hba_file
--;
load 'plpgsql'
--;
checkpoint
--;
# -- stacked statements: one refused statement refuses the whole string
select 1; select * from notes
--;
select id from orders; set role postgres
--;
# -- data-modifying CTEs and write escapes
with x as (delete from orders returning *) select * from x
--;
with x as (insert into orders (customer, amount) values (1, 5) returning *) select 1
--;
insert into orders (customer, amount, secret) values (1, 5, 'x')
--;
insert into orders (customer, amount, status) values (1, 5, 'published')
--;
insert into orders values (1, 1, 'draft', 5, 's')
--;
insert into orders (customer, amount) select customer, amount from orders
--;
insert into orders (customer, amount) values (1, 5) on conflict (id) do update set secret = 'x'
--;
insert into orders (customer, amount) values (1, 5) returning *
--;
insert into notes (body) values ('x')
--;
insert into orders (customer, amount) values (1, 0)
--;
insert into orders (customer, amount) values (1, pg_sleep(1))
--;
update orders set secret = 'x'
--;
update orders set status = 'published'
--;
update orders set amount = 1 from customers where customers.id = orders.customer
--;
update orders set amount = 1 where secret = 'x'
--;
update orders set amount = length(secret)
--;
update orders set amount = 1 returning secret
--;
update orders set amount = 1 returning *
--;
update customers set id = 5
--;
update notes set body = 'x'
--;
delete from notes
--;
delete from customers
--;
delete from orders where secret = 'x'
--;
delete from orders returning ctid
--;
delete from orders using customers where customers.id = orders.customer
--;
# -- whole-row and system-column references on written tables
update orders set amount = 1 returning orders
--;
update orders set amount = 1 returning xmin
--;
update orders o set amount = 1 returning row_to_json(o)
--;
# -- prepared statements and explain wrap guarded statements
prepare p as select secret from orders
--;
explain select secret from orders
--;
explain (format json) select * from notes
--;
execute p(pg_sleep(1))
--;
# -- quoting tricks: the AST, not the text, decides
select "secret" from orders
--;
select id from "notes"
--;
select id from orders where $$x$$ = secret
--;
select id from orders /* comment */ where /* nested /* comment */ */ secret = 'x'
--;
select id from orders where E'\'' = secret
--;
# -- locking and other clauses
select * from orders for update
--;
table orders
--;
select * from orders tablesample system (10)
--;
select * into t from orders
--;
