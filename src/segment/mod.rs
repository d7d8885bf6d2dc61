pub mod kmeans;
