# Statements the MySQL guard must refuse for a restricted user. Schema in the tests (the
# same as pg_refused.sql): orders(id, customer, status, amount, secret: hidden),
# customers(id, name), notes (no permission), in the database mydb. Statements are
# separated by lines holding only "--;".
# -- hidden columns, anywhere, in any case or quoting
select secret from orders
--;
select SECRET from ORDERS
--;
select `secret` from `orders`
--;
select id from orders where secret = 'x'
--;
select id from orders order by secret
--;
select status, count(*) from orders group by secret, status
--;
select max(secret) from orders
--;
select group_concat(secret separator ',') from orders
--;
select o.id from orders o join customers c on c.name = o.secret
--;
select id from orders join customers using (secret)
--;
select id from orders where exists (select 1 from customers where customers.name = orders.secret)
--;
select id from orders having secret is null
--;
select row_number() over (partition by secret) from orders
--;
select json_object('s', secret) from orders
--;
# -- tables without permission, other databases, the server's own
select * from notes
--;
select * from mydb.notes
--;
select * from otherdb.orders
--;
select * from mysql.user
--;
select * from information_schema.processlist
--;
select * from information_schema.innodb_trx
--;
select * from information_schema.user_privileges
--;
select * from performance_schema.threads
--;
select * from sys.processlist
--;
select * from directus_users
--;
select * from orders, notes
--;
select (select count(*) from notes)
--;
select * from orders partition (p0)
--;
select * from orders force index (primary)
--;
# -- CTE shadowing
with orders as (select 1 as id) select * from orders
--;
with ORDERS as (select 1 as id) select * from orders
--;
# -- functions that sleep, lock, read files, reveal the server, run SQL text
select sleep(1)
--;
select benchmark(1000000, md5('x'))
--;
select load_file('/etc/passwd')
--;
select get_lock('x', 1)
--;
select release_lock('x')
--;
select user()
--;
select current_user()
--;
select current_user
--;
select session_user()
--;
select system_user()
--;
select master_pos_wait('x', 1)
--;
select sys_exec('id')
--;
select name_const('a', 1)
--;
select extractvalue('<a/>', '/a')
--;
select mydb.myfunc(1)
--;
select * from json_table('[1]', '$[*]' columns (x int path '$')) as t
--;
# -- executable and version comments
select /*!50000 secret */ id from orders
--;
select /*!99999 secret */ id from orders
--;
select /*M!100000 secret */ id from orders
--;
select id from orders /*! union select secret from orders */
--;
# -- user variables and side effects in predicates
select @x
--;
select @x := 1
--;
select id from orders where (@x := amount) > 0
--;
set @x = 'select secret from orders'
--;
prepare s from @x
--;
prepare s from 'select secret from orders'
--;
execute s
--;
deallocate prepare s
--;
select id into @x from orders limit 1
--;
# -- files and the network
select id from orders into outfile '/tmp/x'
--;
select id from orders into dumpfile '/tmp/x'
--;
load data infile '/etc/passwd' into table orders
--;
load data local infile '/etc/passwd' into table orders
--;
# -- statements that are not queries
handler orders open
--;
call p()
--;
do sleep(1)
--;
lock tables orders write
--;
lock tables orders read, notes read
--;
flush tables
--;
kill 1
--;
xa start 'x'
--;
analyze table orders
--;
create table x (id int)
--;
drop table orders
--;
alter table orders add column y int
--;
truncate table orders
--;
rename table orders to o2
--;
grant all on *.* to 'x'@'%'
--;
create user x
--;
# -- session state that changes how text is read, who the session is, what is checked
set sql_mode = concat(@@sql_mode, ',ANSI_QUOTES')
--;
set global sql_mode = ''
--;
set names gbk
--;
set names latin1
--;
set character set gbk
--;
set character_set_client = 'big5'
--;
set global max_connections = 1
--;
set @@global.autocommit = 0
--;
set foreign_key_checks = 0
--;
set session_track_schema = 1
--;
set optimizer_switch = 'derived_merge=on'
--;
set statement max_statement_time = 1 for select 1
--;
set password = 'x'
--;
use mysql
--;
use information_schema
--;
# -- server state
show processlist
--;
show full processlist
--;
show binlog events
--;
show master status
--;
show slave status
--;
show grants
--;
show variables
--;
show status
--;
show engine innodb status
--;
show create table notes
--;
show columns from notes
--;
describe notes
--;
show tables from mysql
--;
show table status like 'notes'
--;
show index from notes
--;
select @@datadir
--;
select @@hostname
--;
select @@global.version
--;
select @@secure_file_priv
--;
# -- warnings: MySQL reports conversion warnings with the converted values
show warnings
--;
show errors
--;
show count(*) warnings
--;
select @@warning_count
--;
# -- locking reads
select * from orders for update
--;
select * from orders lock in share mode
--;
# -- stacked statements
select 1; drop table orders
--;
select id from orders; select secret from orders
--;
select id from orders where id = 1 union select secret from orders
--;
# -- write escapes
replace into orders (customer, amount) values (1, 5)
--;
insert ignore into orders (customer, amount) values (1, 5)
--;
insert into orders (customer, amount) values (1, 5) on duplicate key update status = 'published'
--;
insert into orders set customer = 1, amount = 5
--;
insert into orders (customer, amount, status) values (1, 5, 'published')
--;
insert into orders (customer, amount, secret) values (1, 5, 'x')
--;
insert into orders (customer, amount) select id, 5 from customers
--;
insert into orders (customer, amount) values (1, -5)
--;
insert into notes (body) values ('x')
--;
update orders set status = 'published'
--;
update orders set secret = 'x'
--;
update orders, customers set orders.amount = 1 where orders.customer = customers.id
--;
update orders set amount = 1 order by id limit 1
--;
update orders set amount = 1 where secret = 'x'
--;
delete from orders where secret = 'x'
--;
delete orders, customers from orders join customers on orders.customer = customers.id
--;
delete from orders limit 1
--;
delete from notes
--;
# -- charset introducers and conversions out of UTF-8
select _gbk'x'
--;
select convert(name using gbk) from customers
--;
# -- casts the allow-list does not know
select cast(name as geometry) from customers
